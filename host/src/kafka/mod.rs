//! Kafka: the durable buffer between what the host accepts and what it processes.

mod consumer;
mod producer;

pub use consumer::{ConsumeError, GroupConsumer, SourceRecord, TopicPartition};

pub use producer::{DurableProducer, ProduceError, StoredAt};
