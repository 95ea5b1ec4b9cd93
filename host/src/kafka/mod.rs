//! Kafka: the durable buffer between what the host accepts and what it processes.

mod producer;

pub use producer::{DurableProducer, ProduceError, StoredAt};
