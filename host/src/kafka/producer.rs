//! A producer that reports success only once the broker has stored the record.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use super::client::client_config;
use crate::config::KafkaConfig;
use crate::telemetry;

/// Why a record was not stored; the caller must not acknowledge it.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("cannot create the Kafka producer: {0}")]
    Create(KafkaError),
    #[error("Kafka did not store the record: {0}")]
    NotStored(KafkaError),
}

/// Where the broker stored a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredAt {
    pub partition: i32,
    pub offset: i64,
}

/// An idempotent producer with `acks=all`: a send resolves only after every in-sync replica
/// has the record, so a 2xx built on it never acknowledges data a broker could lose.
///
/// After a failed delivery the librdkafka client is replaced (at most once per second): an
/// idempotent client whose records timed out can stay wedged on a producer id the broker
/// no longer knows (a restarted broker), and a fresh client starts a new one.
#[derive(Clone)]
pub struct DurableProducer {
    client: Arc<ClientConfig>,
    producer: Arc<ArcSwap<FutureProducer>>,
    last_renewal: Arc<Mutex<Instant>>,
}

const RENEWAL_INTERVAL: Duration = Duration::from_secs(1);

/// What makes a 2xx mean "stored": an idempotent producer answered only once every in-sync
/// replica has the record. Public so the benchmark's bare handler produces exactly as the host does.
pub const DURABLE_PRODUCER_SETTINGS: [(&str, &str); 5] = [
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "2"),
    ("compression.type", "lz4"),
    ("message.max.bytes", "16777216"),
];

impl DurableProducer {
    /// Creates the producer; `delivery_timeout` bounds how long a send may wait (retries
    /// included) before it fails.
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn new(config: &KafkaConfig, delivery_timeout: Duration) -> Result<Self, ProduceError> {
        let timeout_ms = delivery_timeout.as_millis().to_string();
        let mut settings = DURABLE_PRODUCER_SETTINGS.to_vec();
        settings.push(("delivery.timeout.ms", &timeout_ms));
        let client = client_config(config, &settings);
        let producer: FutureProducer = client.create().map_err(ProduceError::Create)?;
        Ok(DurableProducer {
            client: Arc::new(client),
            producer: Arc::new(ArcSwap::from_pointee(producer)),
            last_renewal: Arc::new(Mutex::new(Instant::now())),
        })
    }

    /// Replaces the client after a failure, unless another failure just did.
    fn renew(&self) {
        let Ok(mut last) = self.last_renewal.lock() else { return };
        if last.elapsed() < RENEWAL_INTERVAL {
            return;
        }
        match self.client.create::<FutureProducer>() {
            Ok(fresh) => {
                self.producer.store(Arc::new(fresh));
                *last = Instant::now();
                tracing::info!("Kafka producer replaced after a failed delivery");
            }
            Err(error) => tracing::warn!("cannot replace the Kafka producer: {error}"),
        }
    }

    /// Sends one record and waits for the broker's acknowledgement.
    ///
    /// # Errors
    /// [`ProduceError::NotStored`] when the broker refused it or the delivery timeout passed.
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<StoredAt, ProduceError> {
        self.send_with_headers(topic, key, payload, &[]).await
    }

    /// [`Self::send`], with headers.
    ///
    /// # Errors
    /// As [`Self::send`].
    pub async fn send_with_headers(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(String, Vec<u8>)],
    ) -> Result<StoredAt, ProduceError> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        if !headers.is_empty() {
            let owned =
                headers.iter().fold(OwnedHeaders::new_with_capacity(headers.len()), |owned, (key, value)| {
                    owned.insert(Header { key, value: Some(value.as_slice()) })
                });
            record = record.headers(owned);
        }
        let producer = self.producer.load_full();
        let started = Instant::now();
        // The delivery timeout configured above bounds the wait; no second timer here.
        let delivered = producer.send(record, Timeout::Never).await;
        metrics::histogram!(telemetry::KAFKA_PRODUCE_DURATION, "topic" => topic.to_string())
            .record(started.elapsed().as_secs_f64());
        let outcome = if delivered.is_ok() { "ok" } else { "error" };
        metrics::counter!(telemetry::KAFKA_PRODUCED, "topic" => topic.to_string(), "outcome" => outcome)
            .increment(1);
        match delivered {
            Ok(delivery) => Ok(StoredAt { partition: delivery.partition, offset: delivery.offset }),
            Err((error, _)) => {
                self.renew();
                Err(ProduceError::NotStored(error))
            }
        }
    }

    /// Waits up to `timeout` for records still in flight, at shutdown.
    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer.load().flush(Timeout::After(timeout)) {
            tracing::warn!("Kafka producer flush at shutdown: {error}");
        }
    }
}
