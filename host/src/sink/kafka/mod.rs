//! The `kafka` sink: each row of its output produced to a topic as one JSON object, keyed by
//! the row's key, with the idempotent producer and `acks=all`. With `value = "record"` it
//! passes records on instead: each source record that gave the output at least one row is
//! produced once, as it came (key, value and headers), so a plugin that only decides which
//! records go on (a filter, a router) needs no columns worth keeping.
//!
//! Under a request/reply endpoint each row is produced before the request is answered
//! (`http::request_reply`). Under a connector ([`window`]) a window's rows are produced as its
//! batches settle, and the window is stored once the broker acknowledged every one of them:
//! only then are the source offsets committed. A replay after a crash produces the window's
//! rows again, so a topic → plugin → topic pipeline delivers every row at least once and never
//! loses one; a consumer of the topic dedupes on the row key if it must.

pub mod window;

use std::time::Duration;

use serde::Deserialize;

use crate::kafka::{DurableProducer, GroupConsumer};
use crate::sink::windowed::{BuildContext, Rotation, WindowedSink, WindowedSinkError};
use window::KafkaSink;

/// Partitions of a sink topic created because it did not exist yet, as for source topics.
const DEFAULT_PARTITIONS: i32 = 4;

/// How long the producer tries one record before the window retries it itself.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// `kind = "kafka"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkSettings {
    pub topic: String,
    /// What each produced record holds.
    #[serde(default)]
    pub value: KafkaValue,
    /// Under a connector: a window closes after this many rows ...
    #[serde(default = "default_rotate_records")]
    pub rotate_records: usize,
    /// ... or after this long, whichever comes first. Short, since nothing waits on a file:
    /// it is how long a row may wait before the source offsets behind it are committed.
    #[serde(default = "default_rotate_ms")]
    pub rotate_ms: u64,
}

/// What a `kafka` sink produces for the rows of its output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KafkaValue {
    /// One record per row: the row as a JSON object, keyed by the row's key.
    #[default]
    Row,
    /// One record per source record that gave at least one row: the source record as it came
    /// (under a request/reply endpoint, the request's body).
    Record,
}

fn default_rotate_records() -> usize {
    10_000
}

fn default_rotate_ms() -> u64 {
    1_000
}

impl KafkaSinkSettings {
    /// When its windows close under a connector.
    pub fn rotation(&self) -> Rotation {
        Rotation {
            records: self.rotate_records,
            bytes: usize::MAX,
            age: Duration::from_millis(self.rotate_ms),
        }
    }
}

/// The sink for `from`, producing to its topic (created if it does not exist).
///
/// # Errors
/// [`WindowedSinkError::Setup`] when the producer cannot be created or the topic cannot be made.
pub async fn build_windowed(
    from: &str,
    settings: &KafkaSinkSettings,
    context: &BuildContext<'_>,
) -> Result<Box<dyn WindowedSink>, WindowedSinkError> {
    let setup = |problem: String| WindowedSinkError::Setup { from: from.to_owned(), problem };
    GroupConsumer::ensure_topic(&context.host.kafka, &settings.topic, DEFAULT_PARTITIONS)
        .await
        .map_err(|error| setup(error.to_string()))?;
    let producer = DurableProducer::new(&context.host.kafka, DELIVERY_TIMEOUT)
        .map_err(|error| setup(error.to_string()))?;
    Ok(Box::new(KafkaSink::new(from, settings, producer)))
}
