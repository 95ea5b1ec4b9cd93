//! How the host's Kafka clients are made: the brokers, each kind of client's own settings and
//! the operator's `[kafka.properties]` in one place, and a topic created unless it exists.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;

/// How long the broker may take to create a topic before the attempt counts as failed.
const CREATE_TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

/// A librdkafka configuration for the brokers of `config`: `settings` (what this kind of client
/// needs) first, then `[kafka.properties]`, so an operator's setting always wins.
pub fn client_config(config: &KafkaConfig, settings: &[(&str, &str)]) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.brokers);
    for (key, value) in settings {
        client.set(*key, *value);
    }
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    client
}

/// Creates `topic` with `partitions` partitions unless it exists (an existing topic keeps its
/// partition count), so a pipeline or job queue can start before anything was written to it.
///
/// # Errors
/// When the admin client cannot be made or the broker refuses for another reason than
/// "exists".
pub async fn ensure_topic(config: &KafkaConfig, topic: &str, partitions: i32) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(config, &[]).create()?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(CREATE_TOPIC_TIMEOUT));
    for result in admin.create_topics([&new_topic], &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}
