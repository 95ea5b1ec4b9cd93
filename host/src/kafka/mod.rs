//! Kafka: the durable buffer between what the host accepts and what it processes.

mod client;
mod consumer;
mod producer;

pub use client::{client_config, ensure_topic};

pub use consumer::{ConsumeError, GroupConsumer, SourceRecord, TopicPartition};

pub use producer::{DURABLE_PRODUCER_SETTINGS, DurableProducer, ProduceError, StoredAt};
