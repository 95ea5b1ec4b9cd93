//! Kafka clients for tests: topic creation, producing with delivery confirmed, and reading a
//! topic back from the beginning.
//!
//! tansu reports wrong high watermarks (ListOffsets), so nothing here asks the broker how many
//! records a topic holds: reading stops at an expected count or when the topic goes quiet.

use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::time::Instant;

use crate::HarnessError;

/// A record to produce; the broker picks the partition unless one is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducedRecord {
    /// Record key; records with equal keys land in the same partition.
    pub key: Option<Vec<u8>>,
    /// Record value, sent byte for byte.
    pub value: Vec<u8>,
    /// Partition to write to, or `None` to let the partitioner choose.
    pub partition: Option<i32>,
    /// Record headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ProducedRecord {
    /// A record with only a value.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self { value: value.into(), ..Self::default() }
    }

    /// The same record with a key.
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The same record pinned to one partition.
    pub fn to_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// The same record with one more header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((key.into(), value.into()));
        self
    }
}

/// A record read back from a topic, owned so it outlives the consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Topic the record came from.
    pub topic: String,
    /// Partition the record came from.
    pub partition: i32,
    /// Offset of the record in its partition.
    pub offset: i64,
    /// Record key, if it had one.
    pub key: Option<Vec<u8>>,
    /// Record value (empty for a null value).
    pub value: Vec<u8>,
    /// Record headers, in order; a null header value reads as empty.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// When reading a topic may stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadUntil {
    /// Stop once this many records arrived; fewer by the deadline is an error.
    Count(usize),
    /// Stop once no record arrived for this long after the first one (or at the deadline).
    Idle(Duration),
}

/// A client configuration pointing at `brokers`, built as the host builds its own (so a
/// setting the host's clients need, the tests' clients get too).
pub fn client_config(brokers: &str) -> ClientConfig {
    let host = sluice::config::KafkaConfig { brokers: brokers.to_owned(), ..Default::default() };
    sluice::kafka::client_config(&host, &[])
}

/// Creates `topic` with `partitions` partitions and one replica (tansu has one broker).
///
/// # Errors
///
/// If the admin client cannot be built or the broker refuses the topic, including because it
/// already exists: scoped topic names are unique, so an existing one means a naming mistake.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), HarnessError> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(brokers).create().map_err(HarnessError::kafka("building an admin client"))?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &options)
        .await
        .map_err(HarnessError::kafka(format!("creating topic {topic}")))?;
    for result in results {
        if let Err((topic, code)) = result {
            return Err(HarnessError::CreateTopic { topic, code });
        }
    }
    Ok(())
}

/// A producer with the host's own durable settings (idempotent, `acks=all`).
///
/// # Errors
///
/// If rdkafka rejects the configuration.
pub fn idempotent_producer(brokers: &str) -> Result<FutureProducer, HarnessError> {
    let mut config = client_config(brokers);
    for (key, value) in sluice::kafka::DURABLE_PRODUCER_SETTINGS {
        config.set(key, value);
    }
    config
        .set("message.timeout.ms", "30000")
        .create()
        .map_err(HarnessError::kafka("building an idempotent producer"))
}

/// Sends every record to `topic` and waits until the broker confirmed each one.
///
/// All records are in flight at once, so order across partitions is not kept, but order
/// within a partition is (the producer is idempotent). Returns `(partition, offset)` per
/// record, in the order given.
///
/// # Errors
///
/// On the first record the broker did not confirm.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    records: &[ProducedRecord],
) -> Result<Vec<(i32, i64)>, HarnessError> {
    let mut deliveries = Vec::with_capacity(records.len());
    for record in records {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in &record.headers {
            headers = headers.insert(Header { key, value: Some(value) });
        }
        let mut future_record = FutureRecord::<[u8], [u8]>::to(topic).payload(&record.value).headers(headers);
        if let Some(key) = &record.key {
            future_record = future_record.key(key);
        }
        if let Some(partition) = record.partition {
            future_record = future_record.partition(partition);
        }
        let delivery = producer.send_result(future_record).map_err(|(source, _)| HarnessError::Kafka {
            operation: format!("queueing a record for {topic}"),
            source,
        })?;
        deliveries.push(delivery);
    }
    let mut positions = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let delivered = delivery.await.map_err(|_| HarnessError::Kafka {
            operation: format!("producing to {topic}: the producer was dropped"),
            source: rdkafka::error::KafkaError::Canceled,
        })?;
        let delivered = delivered.map_err(|(source, _)| HarnessError::Kafka {
            operation: format!("producing to {topic}"),
            source,
        })?;
        positions.push((delivered.partition, delivered.offset));
    }
    Ok(positions)
}

/// A consumer in group `group_id` that starts from the earliest offset when the group has no
/// committed one.
///
/// `session.timeout.ms` is 6 s so a group (re)join takes seconds, not the default 45.
///
/// # Errors
///
/// If rdkafka rejects the configuration.
pub fn group_consumer(brokers: &str, group_id: &str) -> Result<StreamConsumer, HarnessError> {
    client_config(brokers)
        .set("group.id", group_id)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(HarnessError::kafka("building a group consumer"))
}

/// Reads `topic` from the beginning in a fresh group `group_id` until `until` or `deadline`.
///
/// # Errors
///
/// If the consumer fails, or with [`ReadUntil::Count`] when fewer records arrived in time.
pub async fn read_topic(
    brokers: &str,
    group_id: &str,
    topic: &str,
    until: ReadUntil,
    deadline: Duration,
) -> Result<Vec<ConsumedRecord>, HarnessError> {
    let consumer = group_consumer(brokers, group_id)?;
    consumer.subscribe(&[topic]).map_err(HarnessError::kafka(format!("subscribing to {topic}")))?;
    let started = Instant::now();
    let give_up = started + deadline;
    let mut records = Vec::new();
    loop {
        if let ReadUntil::Count(expected) = until
            && records.len() >= expected
        {
            return Ok(records);
        }
        let mut wait_until = give_up;
        if let ReadUntil::Idle(idle) = until
            && !records.is_empty()
        {
            wait_until = wait_until.min(Instant::now() + idle);
        }
        match tokio::time::timeout_at(wait_until, consumer.recv()).await {
            Ok(Ok(message)) => records.push(owned_record(&message)),
            Ok(Err(source)) => {
                return Err(HarnessError::Kafka { operation: format!("consuming {topic}"), source });
            }
            Err(_elapsed) => match until {
                ReadUntil::Idle(_) => return Ok(records),
                ReadUntil::Count(expected) => {
                    return Err(HarnessError::TooFewRecords {
                        topic: topic.to_owned(),
                        expected,
                        received: records.len(),
                        waited: started.elapsed(),
                    });
                }
            },
        }
    }
}

fn owned_record(message: &rdkafka::message::BorrowedMessage<'_>) -> ConsumedRecord {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| (header.key.to_owned(), header.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    ConsumedRecord {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().unwrap_or_default().to_vec(),
        headers,
    }
}

/// How far `group` has committed on `topic` against what the topic holds: `(committed, end)`
/// summed over its partitions, a partition without a commit counting 0. A connector commits a
/// window only after storing it, so `committed == end` means everything produced so far is
/// stored: the signal to wait for before checking that nothing more arrives.
///
/// # Errors
///
/// If the consumer cannot be built or the broker does not answer.
pub async fn group_progress(brokers: &str, group: &str, topic: &str) -> Result<(i64, i64), HarnessError> {
    let (brokers, group, topic) = (brokers.to_owned(), group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        // Not subscribed: it only asks the group's coordinator, without joining the group.
        let consumer: BaseConsumer = client_config(&brokers)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(HarnessError::kafka("building an offsets consumer"))?;
        let timeout = Duration::from_secs(10);
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .map_err(HarnessError::kafka(format!("reading the partitions of {topic}")))?;
        let partitions: Vec<i32> =
            metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
        let mut list = TopicPartitionList::new();
        for partition in &partitions {
            list.add_partition(&topic, *partition);
        }
        let committed = consumer
            .committed_offsets(list, timeout)
            .map_err(HarnessError::kafka(format!("reading {group}'s offsets")))?;
        let committed: i64 =
            committed.elements().iter().map(|e| e.offset().to_raw().unwrap_or(0).max(0)).sum();
        let mut end = 0;
        for partition in partitions {
            let (_, high) = consumer
                .fetch_watermarks(&topic, partition, timeout)
                .map_err(HarnessError::kafka(format!("reading the end of {topic}/{partition}")))?;
            end += high;
        }
        Ok((committed, end))
    })
    .await
    .unwrap_or_else(|error| panic!("offsets task: {error}"))
}
