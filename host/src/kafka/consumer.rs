//! A consumer group member that hands out batches and commits only what the caller says is
//! stored.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::client::{client_config, ensure_topic};
use crate::config::KafkaConfig;
use crate::telemetry;

/// Why consuming or committing failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("cannot create the Kafka consumer for group `{group}`: {source}")]
    Create { group: String, source: KafkaError },
    #[error("cannot create the topic `{topic}`: {source}")]
    CreateTopic { topic: String, source: KafkaError },
    #[error("cannot subscribe to `{topic}`: {source}")]
    Subscribe { topic: String, source: KafkaError },
    #[error("cannot read from Kafka: {0}")]
    Receive(KafkaError),
    #[error("cannot commit offsets: {0}")]
    Commit(KafkaError),
}

/// One record read from Kafka, with where it came from.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The record's Kafka timestamp in milliseconds, when it has one.
    pub timestamp_ms: Option<i64>,
}

/// A topic partition.
pub type TopicPartition = (Arc<str>, i32);

/// Remembers partitions taken away by a rebalance, so the caller can drop what it buffered for
/// them: the new owner starts again from the last committed offset. Also turns librdkafka's
/// periodic statistics into the consumer-lag gauge.
#[derive(Default)]
pub struct RebalanceTracker {
    group: String,
    /// This member's number in the process, for the assigned-partitions gauge.
    member: String,
    revoked: Mutex<BTreeSet<(String, i32)>>,
    assigned: Mutex<BTreeSet<(String, i32)>>,
}

impl ClientContext for RebalanceTracker {
    fn stats(&self, statistics: Statistics) {
        for (topic, topic_stats) in &statistics.topics {
            // Partition -1 is librdkafka's internal "unassigned" queue; -1 lag means unknown.
            let known = topic_stats.partitions.values().filter(|p| p.partition >= 0 && p.consumer_lag >= 0);
            for partition in known {
                metrics::gauge!(
                    telemetry::KAFKA_CONSUMER_LAG,
                    "group" => self.group.clone(),
                    "topic" => topic.clone(),
                    "partition" => partition.partition.to_string()
                )
                .set(partition.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for RebalanceTracker {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let list: Vec<(String, i32)> =
                partitions.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
            tracing::info!(partitions = ?list, "partitions revoked");
            if let Ok(mut revoked) = self.revoked.lock() {
                revoked.extend(list.iter().cloned());
            }
            if let Ok(mut assigned) = self.assigned.lock() {
                for partition in &list {
                    assigned.remove(partition);
                }
                self.report_assigned(assigned.len());
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            let list: Vec<(String, i32)> =
                partitions.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
            tracing::info!(partitions = ?list, "partitions assigned");
            if let Ok(mut assigned) = self.assigned.lock() {
                assigned.extend(list);
                self.report_assigned(assigned.len());
            }
        }
    }
}

impl RebalanceTracker {
    fn report_assigned(&self, partitions: usize) {
        metrics::gauge!(
            telemetry::KAFKA_ASSIGNED_PARTITIONS,
            "group" => self.group.clone(),
            "member" => self.member.clone()
        )
        .set(partitions as f64);
    }
}

/// Numbers the consumers this process creates, for [`RebalanceTracker::member`].
static MEMBERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A member of one consumer group reading one topic. Auto-commit is off: offsets move only
/// through [`GroupConsumer::commit`], after the records' results are stored.
pub struct GroupConsumer {
    consumer: Arc<StreamConsumer<RebalanceTracker>>,
    group: String,
}

/// How much the consumer prefetches ahead of the pipeline, in KiB (librdkafka's
/// `queued.max.messages.kbytes`; a `[kafka.properties]` entry overrides it). With the short
/// fetch backoff below, 4 MiB keeps a member fed as well as 64 MiB did, and holds 15–30 MB
/// less than 8 MiB in a two-member connector (the batches decompress to about three times
/// what the limit counts).
const PREFETCH_KBYTES: &str = "4096";

/// How long librdkafka waits before fetching again once the prefetch is full, in ms.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

impl GroupConsumer {
    /// Joins `group` and subscribes to `topic`; a group with no committed offsets starts at the
    /// beginning of the topic, so nothing written before the first start is skipped.
    ///
    /// # Errors
    /// [`ConsumeError`] when librdkafka rejects the configuration or the subscription.
    pub fn new(config: &KafkaConfig, group: &str, topic: &str) -> Result<Self, ConsumeError> {
        let client = client_config(
            config,
            &[
                ("group.id", group),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
                // Short sessions so a stopped member's partitions move on within seconds.
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "1000"),
                ("fetch.wait.max.ms", "100"),
                // librdkafka prefetches up to 64 MiB of messages by default: more than the
                // windows themselves. A sixteenth of that still keeps several batches queued.
                ("queued.max.messages.kbytes", PREFETCH_KBYTES),
                // Once the prefetch is full librdkafka stops fetching for this long (1 s by
                // default): a consumer faster than the fetches then idles most of the time.
                // Consuming 343 MB with a 16 MiB prefetch took 7.8 s at the default, 0.9 s at 10 ms.
                ("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS),
                // Notice a topic created after the subscription within seconds, not minutes.
                ("topic.metadata.refresh.interval.ms", "5000"),
                // Feeds the consumer-lag gauge.
                ("statistics.interval.ms", "5000"),
            ],
        );
        let consumer: StreamConsumer<RebalanceTracker> = client
            .create_with_context(RebalanceTracker {
                group: group.to_owned(),
                member: MEMBERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string(),
                ..RebalanceTracker::default()
            })
            .map_err(|source| ConsumeError::Create { group: group.to_owned(), source })?;
        consumer
            .subscribe(&[topic])
            .map_err(|source| ConsumeError::Subscribe { topic: topic.to_owned(), source })?;
        Ok(GroupConsumer { consumer: Arc::new(consumer), group: group.to_owned() })
    }

    /// Creates `topic` with `partitions` partitions unless it exists, so a pipeline can start
    /// before anything was written to its topic.
    ///
    /// # Errors
    /// [`ConsumeError::CreateTopic`] when the broker refuses for another reason than "exists".
    pub async fn ensure_topic(
        config: &KafkaConfig,
        topic: &str,
        partitions: i32,
    ) -> Result<(), ConsumeError> {
        ensure_topic(config, topic, partitions)
            .await
            .map_err(|source| ConsumeError::CreateTopic { topic: topic.to_owned(), source })
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// Up to `max_records` records: waits up to `max_wait` for the first, then takes what
    /// arrives until the batch is full or `max_wait` has passed since the call. An empty batch
    /// means nothing arrived in time.
    ///
    /// # Errors
    /// [`ConsumeError::Receive`] on an error the client cannot retry by itself.
    pub async fn next_batch(
        &self,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Vec<SourceRecord>, ConsumeError> {
        let deadline = Instant::now() + max_wait;
        let mut batch = Vec::new();
        let mut topic: Option<Arc<str>> = None;
        while batch.len() < max_records {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let message = match tokio::time::timeout(left, self.consumer.recv()).await {
                Err(_elapsed) => break,
                Ok(Ok(message)) => message,
                Ok(Err(error)) if is_transient(&error) => {
                    tracing::warn!(group = %self.group, "Kafka: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Ok(Err(error)) => return Err(ConsumeError::Receive(error)),
            };
            let record_topic = match &topic {
                Some(known) if known.as_ref() == message.topic() => known.clone(),
                _ => {
                    let fresh: Arc<str> = message.topic().into();
                    topic = Some(fresh.clone());
                    fresh
                }
            };
            let headers = message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec).unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            batch.push(SourceRecord {
                topic: record_topic,
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                headers,
                timestamp_ms: message.timestamp().to_millis(),
            });
        }
        if let Some(topic) = topic {
            metrics::counter!(telemetry::KAFKA_CONSUMED, "group" => self.group.clone(), "topic" => topic.to_string())
                .increment(batch.len() as u64);
        }
        Ok(batch)
    }

    /// Partitions revoked since the last call.
    pub fn take_revoked(&self) -> Vec<TopicPartition> {
        let Ok(mut revoked) = self.consumer.context().revoked.lock() else { return Vec::new() };
        std::mem::take(&mut *revoked)
            .into_iter()
            .map(|(topic, partition)| (topic.into(), partition))
            .collect()
    }

    /// The partitions this member owns now.
    pub fn assigned(&self) -> Vec<TopicPartition> {
        let Ok(assigned) = self.consumer.context().assigned.lock() else { return Vec::new() };
        assigned.iter().map(|(topic, partition)| (topic.as_str().into(), *partition)).collect()
    }

    /// Commits, for each partition, the offset of the next record to read; returns once the
    /// broker has it.
    ///
    /// # Errors
    /// [`ConsumeError::Commit`] when the broker did not take the commit.
    pub async fn commit(&self, next_offsets: &[(TopicPartition, i64)]) -> Result<(), ConsumeError> {
        if next_offsets.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in next_offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(ConsumeError::Commit)?;
        }
        let consumer = self.consumer.clone();
        match tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync)).await {
            Ok(result) => result.map_err(ConsumeError::Commit),
            Err(_cancelled) => Err(ConsumeError::Commit(KafkaError::Canceled)),
        }
    }
}

/// Errors librdkafka recovers from on its own (a broker away for a moment, a partition end).
fn is_transient(error: &KafkaError) -> bool {
    matches!(error, KafkaError::PartitionEOF(_) | KafkaError::MessageConsumption(_))
}
