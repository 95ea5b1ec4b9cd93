//! Capturing a pipeline's source topic: partitions assigned directly, outside any consumer
//! group's membership, with auto-commit off and no commit ever made, so capturing never moves
//! the offsets a pipeline resumes from.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use sluice_samples::SampleRecord;

use super::{CaptureError, Captured, PartitionEnd, PartitionRange, json_object};
use crate::config::KafkaConfig;
use crate::kafka::client_config;

/// How long the broker may take to describe the topic.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one poll waits; the idle guard is checked between polls.
const POLL: Duration = Duration::from_millis(100);

/// What to read from a topic.
#[derive(Debug, Clone)]
pub(super) struct TopicRequest {
    pub kafka: KafkaConfig,
    pub topic: String,
    /// Empty for every partition of the topic.
    pub partitions: Vec<i32>,
    /// Where to start in each partition; the earliest record when `None`.
    pub offset: Option<i64>,
    /// Only records whose Kafka timestamp is at or after this, in ms since the epoch.
    pub since_ms: Option<i64>,
    pub limit: usize,
    /// How long a partition may stay silent before it counts as read to its end.
    pub wait: Duration,
}

/// The records of `request`, in partition order then offset, and what was read per partition.
///
/// # Errors
/// [`CaptureError`] when the topic or a partition does not exist, or the client fails.
pub(super) async fn capture(
    request: TopicRequest,
) -> Result<(Vec<Captured>, Vec<PartitionRange>), CaptureError> {
    // librdkafka's calls block; they run off the async workers.
    tokio::task::spawn_blocking(move || capture_blocking(&request))
        .await
        .map_err(|_| CaptureError::TaskLost("Kafka"))?
}

fn capture_blocking(request: &TopicRequest) -> Result<(Vec<Captured>, Vec<PartitionRange>), CaptureError> {
    let kafka = |source| CaptureError::Kafka { topic: request.topic.clone(), source };
    let consumer: BaseConsumer = capture_client(&request.kafka).create().map_err(kafka)?;
    let partitions = choose_partitions(&consumer, request)?;
    let mut captured = Vec::new();
    let mut ranges = Vec::with_capacity(partitions.len());
    // One partition at a time, so the records come in partition order and `--limit` takes the
    // first ones in that order, however the broker interleaves its fetches.
    for partition in partitions {
        let left = request.limit.saturating_sub(captured.len());
        let (records, range) = read_partition(&consumer, request, partition, left)?;
        captured.extend(records);
        ranges.push(range);
        if captured.len() >= request.limit {
            break;
        }
    }
    consumer.unassign().map_err(kafka)?;
    Ok((captured, ranges))
}

/// A consumer configuration that can only read: a group id of its own that never joins (the
/// partitions are assigned, not subscribed) and never commits, set after the operator's
/// `[kafka.properties]` so none of those can change it.
fn capture_client(kafka: &KafkaConfig) -> rdkafka::ClientConfig {
    let mut client =
        client_config(kafka, &[("fetch.wait.max.ms", "100"), ("topic.metadata.refresh.interval.ms", "5000")]);
    let group = format!("sluice-samples-capture-{}", uuid::Uuid::new_v4());
    client
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A start past the end, or before what the broker still keeps, reads from the earliest
        // record; records before the requested offset are then left out here.
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true");
    client
}

/// The partitions to read, in order: those asked for, checked against the topic, or all.
fn choose_partitions(consumer: &BaseConsumer, request: &TopicRequest) -> Result<Vec<i32>, CaptureError> {
    let metadata = consumer
        .fetch_metadata(Some(&request.topic), METADATA_TIMEOUT)
        .map_err(|source| CaptureError::Kafka { topic: request.topic.clone(), source })?;
    let mut existing: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|topic| topic.name() == request.topic)
        .flat_map(|topic| topic.partitions().iter().map(|partition| partition.id()))
        .collect();
    existing.sort_unstable();
    if existing.is_empty() {
        return Err(CaptureError::NoSuchTopic(request.topic.clone()));
    }
    select_partitions(&request.topic, &existing, &request.partitions)
}

/// `asked` in ascending order without repeats, each one of `existing`; all of `existing` when
/// nothing was asked.
pub(super) fn select_partitions(
    topic: &str,
    existing: &[i32],
    asked: &[i32],
) -> Result<Vec<i32>, CaptureError> {
    if asked.is_empty() {
        return Ok(existing.to_vec());
    }
    let mut chosen = asked.to_vec();
    chosen.sort_unstable();
    chosen.dedup();
    if let Some(missing) = chosen.iter().find(|partition| !existing.contains(partition)) {
        return Err(CaptureError::NoSuchPartition {
            topic: topic.to_owned(),
            partition: *missing,
            count: existing.len(),
        });
    }
    Ok(chosen)
}

/// Up to `limit` records of one partition, from the requested start to its end: the partition
/// EOF librdkafka reports, or `request.wait` without a record (some brokers report ends that
/// cannot be trusted, so the EOF alone is not relied on).
fn read_partition(
    consumer: &BaseConsumer,
    request: &TopicRequest,
    partition: i32,
    limit: usize,
) -> Result<(Vec<Captured>, PartitionRange), CaptureError> {
    let kafka = |source| CaptureError::Kafka { topic: request.topic.clone(), source };
    let start = request.offset.map_or(Offset::Beginning, Offset::Offset);
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&request.topic, partition, start).map_err(kafka)?;
    consumer.assign(&assignment).map_err(kafka)?;

    let mut records = Vec::new();
    let mut last_seen = Instant::now();
    let end = loop {
        if records.len() >= limit {
            break PartitionEnd::Limit;
        }
        match consumer.poll(POLL) {
            None => {
                if last_seen.elapsed() >= request.wait {
                    break PartitionEnd::Idle;
                }
            }
            Some(Err(KafkaError::PartitionEOF(at))) if at == partition => break PartitionEnd::Eof,
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(error @ KafkaError::MessageConsumption(_))) => {
                // A broker away for a moment; librdkafka retries, and the idle guard ends the wait.
                tracing::warn!(topic = %request.topic, partition, "Kafka: {error}");
            }
            Some(Err(source)) => return Err(kafka(source)),
            Some(Ok(message)) => {
                last_seen = Instant::now();
                if message.partition() != partition || message.topic() != request.topic {
                    continue;
                }
                let timestamp_ms = message.timestamp().to_millis();
                if keep(message.offset(), timestamp_ms, request.offset, request.since_ms) {
                    let headers = message
                        .headers()
                        .map(|headers| {
                            headers
                                .iter()
                                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec).unwrap_or_default()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let record = SampleRecord {
                        key: message.key().map(<[u8]>::to_vec),
                        value: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                        headers,
                    };
                    records.push(captured(&request.topic, partition, message.offset(), timestamp_ms, record));
                }
            }
        }
    };
    let offset_of = |captured: &Captured| captured.origin.get("offset").and_then(Value::as_i64);
    let range = PartitionRange {
        partition,
        records: records.len(),
        first_offset: records.first().and_then(offset_of),
        last_offset: records.last().and_then(offset_of),
        end,
    };
    Ok((records, range))
}

/// Whether a record at `offset` with `timestamp_ms` is wanted: at or after the requested start
/// (a start past the end reads from the earliest record, which is then left out) and, with
/// `since_ms`, stamped at or after it (a record without a timestamp is left out then).
pub(super) fn keep(
    offset: i64,
    timestamp_ms: Option<i64>,
    start: Option<i64>,
    since_ms: Option<i64>,
) -> bool {
    let after_start = start.is_none_or(|start| offset >= start);
    let recent = since_ms.is_none_or(|since| timestamp_ms.is_some_and(|stamp| stamp >= since));
    after_start && recent
}

/// A record read from `topic` as captured: its coordinates and timestamp as its origin.
pub(super) fn captured(
    topic: &str,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    record: SampleRecord,
) -> Captured {
    let origin = json_object([
        ("topic", topic.into()),
        ("partition", partition.into()),
        ("offset", offset.into()),
        ("timestamp_ms", timestamp_ms.into()),
    ]);
    Captured { record, origin, place: format!("topic {topic} partition {partition} offset {offset}") }
}
