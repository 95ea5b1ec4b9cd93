use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::producer::FutureProducer;

use crate::kafka::{self, ConsumedRecord, ProducedRecord, ReadUntil};
use crate::{HarnessError, S3, Services, postgres};

/// One test's private corner of the shared services.
///
/// Services keep their state between runs and tests run in parallel, so every name a test
/// uses carries a suffix unique to this scope: topics, consumer groups, S3 keys (a prefix in
/// the shared bucket), extra buckets and a PostgreSQL schema. Nothing is deleted on drop, so a
/// failed test leaves its data to look at; [`TestScope::cleanup`] removes it on success.
#[derive(Debug)]
pub struct TestScope {
    services: &'static Services,
    id: String,
    suffix: String,
    schema: String,
    s3: S3,
    groups: AtomicU64,
}

impl TestScope {
    /// Opens a scope for the test `test_name` and creates its PostgreSQL schema.
    ///
    /// # Errors
    ///
    /// If PostgreSQL refuses the connection or the schema.
    pub async fn new(services: &'static Services, test_name: &str) -> Result<Self, HarnessError> {
        let id = unique_id();
        let suffix = format!("{}_{id}", identifier(test_name, 32));
        let schema = format!("sluice_e2e_{suffix}");
        let client = postgres::connect(&services.database_url).await?;
        client
            .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
            .await
            .map_err(HarnessError::postgres(format!("creating schema {schema}")))?;
        Ok(Self { services, id, suffix, schema, s3: S3::new(services), groups: AtomicU64::new(0) })
    }

    /// The services this scope lives in.
    pub fn services(&self) -> &'static Services {
        self.services
    }

    /// The suffix unique to this scope: the test name (made safe) and a random id.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    // ---- Kafka -----------------------------------------------------------------------------

    /// The scoped name of topic `name`; it is not created (see [`TestScope::create_topic`]).
    pub fn topic(&self, name: &str) -> String {
        format!("e2e.{}.{name}", self.suffix)
    }

    /// A consumer group id not used before, derived from `name`.
    pub fn group_id(&self, name: &str) -> String {
        let number = self.groups.fetch_add(1, Ordering::Relaxed);
        format!("e2e.{}.{name}.{number}", self.suffix)
    }

    /// Creates the scoped topic `name` with `partitions` partitions and returns its full name.
    ///
    /// # Errors
    ///
    /// If the broker refuses the topic.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<String, HarnessError> {
        let topic = self.topic(name);
        kafka::create_topic(&self.services.kafka_brokers, &topic, partitions).await?;
        Ok(topic)
    }

    /// An idempotent `acks=all` producer on the test broker.
    ///
    /// # Errors
    ///
    /// If rdkafka rejects the configuration.
    pub fn producer(&self) -> Result<FutureProducer, HarnessError> {
        kafka::idempotent_producer(&self.services.kafka_brokers)
    }

    /// Produces `records` to `topic` with a fresh idempotent producer and waits for delivery.
    ///
    /// Returns `(partition, offset)` per record, in the order given.
    ///
    /// # Errors
    ///
    /// If any record is not confirmed by the broker.
    pub async fn produce(
        &self,
        topic: &str,
        records: &[ProducedRecord],
    ) -> Result<Vec<(i32, i64)>, HarnessError> {
        kafka::produce(&self.producer()?, topic, records).await
    }

    /// Reads `topic` from the beginning in a new consumer group until `expected` records
    /// arrived.
    ///
    /// # Errors
    ///
    /// With [`HarnessError::TooFewRecords`] if fewer arrive within `timeout`, or if the
    /// consumer fails.
    pub async fn consume(
        &self,
        topic: &str,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<ConsumedRecord>, HarnessError> {
        let group = self.group_id("reader");
        kafka::read_topic(&self.services.kafka_brokers, &group, topic, ReadUntil::Count(expected), timeout)
            .await
    }

    /// Reads `topic` from the beginning in a new consumer group until no record arrived for
    /// `idle` after the first one, or `timeout` passed; for when the count is what is tested.
    ///
    /// # Errors
    ///
    /// If the consumer fails.
    pub async fn consume_until_idle(
        &self,
        topic: &str,
        idle: Duration,
        timeout: Duration,
    ) -> Result<Vec<ConsumedRecord>, HarnessError> {
        let group = self.group_id("reader");
        kafka::read_topic(&self.services.kafka_brokers, &group, topic, ReadUntil::Idle(idle), timeout).await
    }

    // ---- S3 --------------------------------------------------------------------------------

    /// The S3 client of this scope.
    /// Whether consumer group `group` has committed everything `topic` holds (see
    /// [`kafka::group_progress`]): what a connector has stored, it has committed.
    ///
    /// # Panics
    /// When the broker cannot be asked.
    pub async fn group_caught_up(&self, group: &str, topic: &str) -> bool {
        let (committed, end) = kafka::group_progress(&self.services.kafka_brokers, group, topic)
            .await
            .unwrap_or_else(|error| panic!("offsets of {group} on {topic}: {error}"));
        end > 0 && committed >= end
    }

    pub fn s3(&self) -> &S3 {
        &self.s3
    }

    /// The shared bucket; this scope owns the keys under [`TestScope::prefix`] in it.
    pub fn bucket(&self) -> &str {
        &self.services.s3_bucket
    }

    /// This scope's key prefix in the shared bucket, ending in `/`.
    pub fn prefix(&self) -> String {
        format!("{}/", self.suffix)
    }

    /// The key `name` under this scope's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }

    /// Creates a new bucket of this scope's own, named after `name`, and returns its name.
    ///
    /// For tests of behaviour that depends on a whole bucket (missing keys, listings from the
    /// root); otherwise the prefix in the shared bucket is cheaper.
    ///
    /// # Errors
    ///
    /// If the S3 server refuses the bucket.
    pub async fn create_bucket(&self, name: &str) -> Result<String, HarnessError> {
        let bucket = bucket_name(&self.id, name);
        self.s3.create_bucket(&bucket).await?;
        Ok(bucket)
    }

    // ---- PostgreSQL ------------------------------------------------------------------------

    /// This scope's PostgreSQL schema (already created).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A URL whose connections use this scope's schema as `search_path`, e.g. for a sluice
    /// process under test.
    pub fn database_url(&self) -> String {
        postgres::url_with_search_path(&self.services.database_url, &self.schema)
    }

    /// A client whose unqualified table names resolve in this scope's schema.
    ///
    /// # Errors
    ///
    /// If the connection fails.
    pub async fn postgres(&self) -> Result<tokio_postgres::Client, HarnessError> {
        postgres::connect(&self.database_url()).await
    }

    /// Drops this scope's schema and its objects in the shared bucket.
    ///
    /// Call it at the end of a passing test; a failing test skips it and keeps the evidence.
    /// Topics and extra buckets stay (tansu and SeaweedFS keep them cheaply).
    ///
    /// # Errors
    ///
    /// If PostgreSQL or S3 refuses the cleanup.
    pub async fn cleanup(self) -> Result<(), HarnessError> {
        let client = postgres::connect(&self.services.database_url).await?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema))
            .await
            .map_err(HarnessError::postgres(format!("dropping schema {}", self.schema)))?;
        self.s3.delete_prefix(self.bucket(), &self.prefix()).await
    }
}

/// Eight hex digits from the process id, the clock, a counter and std's per-process random
/// hasher seed: unique enough across parallel processes and repeated runs.
fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hash = std::hash::RandomState::new().hash_one((std::process::id(), nanos, count));
    format!("{:08x}", hash & 0xffff_ffff)
}

/// `name` lower-cased with every run of other characters turned into one `_`, at most
/// `max_len` long: valid in topic names and unquoted SQL identifiers alike.
fn identifier(name: &str, max_len: usize) -> String {
    let mut out = String::with_capacity(name.len().min(max_len));
    for character in name.chars() {
        if out.len() >= max_len {
            break;
        }
        if character.is_ascii_alphanumeric() {
            out.push(character.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_end_matches('_');
    if trimmed.is_empty() { "test".to_owned() } else { trimmed.to_owned() }
}

/// An S3 bucket name (3–63 of `a-z0-9-`, starting with the unique id so truncation keeps it
/// unique) for the scope `id` and `name`.
fn bucket_name(id: &str, name: &str) -> String {
    let mut bucket = format!("{id}-{}", identifier(name, 63).replace('_', "-"));
    bucket.truncate(63);
    bucket.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_lowercase_alphanumeric_with_single_underscores() {
        assert_eq!(identifier("S3 put/get -- Round Trip!", 32), "s3_put_get_round_trip");
        assert_eq!(identifier("::", 32), "test");
        assert_eq!(identifier("abcdefgh_ijk", 8), "abcdefgh");
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        let bucket = bucket_name("0badcafe", &"Very_Long name ".repeat(10));
        assert!(bucket.len() <= 63, "{bucket}");
        assert!(bucket.starts_with("0badcafe-very-long-name"), "{bucket}");
        assert!(bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{bucket}");
        assert!(!bucket.ends_with('-'), "{bucket}");
    }

    #[test]
    fn unique_ids_differ() {
        assert_ne!(unique_id(), unique_id());
    }
}
