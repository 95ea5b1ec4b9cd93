//! Kafka clients set up as sluice sets up its own, so a peer measured beside sluice differs
//! only in the work it skips.

use std::time::Duration;

use rdkafka::ClientConfig;
use sluice::config::KafkaConfig;
use sluice::kafka::{ConsumeError, DURABLE_PRODUCER_SETTINGS, GroupConsumer, client_config};

/// A producer configuration for `brokers` with sluice's own durable settings
/// ([`DURABLE_PRODUCER_SETTINGS`]); a send fails after `delivery_timeout` (sluice's webhook
/// default is 10 s).
pub fn durable_producer_config(brokers: &str, delivery_timeout: Duration) -> ClientConfig {
    let kafka = KafkaConfig { brokers: brokers.to_owned(), ..KafkaConfig::default() };
    let timeout_ms = delivery_timeout.as_millis().to_string();
    let mut settings = DURABLE_PRODUCER_SETTINGS.to_vec();
    settings.push(("delivery.timeout.ms", &timeout_ms));
    client_config(&kafka, &settings)
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
