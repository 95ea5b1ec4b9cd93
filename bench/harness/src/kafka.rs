//! Kafka clients set up as sluice sets up its own, so a peer measured beside sluice differs
//! only in the work it skips.

use std::time::Duration;

use rdkafka::ClientConfig;
use sluice::config::KafkaConfig;
use sluice::kafka::{ConsumeError, GroupConsumer};

/// The librdkafka settings of sluice's `DurableProducer` (`host/src/kafka/producer.rs`): an
/// idempotent producer answered only once every in-sync replica has the record. Keep in step
/// with that file, or the webhook comparison stops being fair.
pub const DURABLE_PRODUCER_SETTINGS: [(&str, &str); 5] = [
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "2"),
    ("compression.type", "lz4"),
    ("message.max.bytes", "16777216"),
];

/// A producer configuration for `brokers` with [`DURABLE_PRODUCER_SETTINGS`]; a send fails
/// after `delivery_timeout` (sluice's webhook default is 10 s).
pub fn durable_producer_config(brokers: &str, delivery_timeout: Duration) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (key, value) in DURABLE_PRODUCER_SETTINGS {
        config.set(key, value);
    }
    config.set("delivery.timeout.ms", delivery_timeout.as_millis().to_string());
    config
}

/// Creates `topic` with `partitions` partitions through the admin API unless it exists (an
/// existing topic keeps its partition count), the way sluice creates its source topics.
///
/// # Errors
/// When the broker refuses for another reason than "exists".
pub async fn ensure_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), ConsumeError> {
    let kafka = KafkaConfig { brokers: brokers.to_owned(), ..KafkaConfig::default() };
    GroupConsumer::ensure_topic(&kafka, topic, partitions).await
}
