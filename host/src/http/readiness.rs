//! `/readyz`: whether the services this host's pipelines use answer right now.
//!
//! Only what some pipeline needs is checked: Kafka for webhook, Kafka and job sources and
//! Kafka sinks; S3 for table sinks, dead letters and jobs; PostgreSQL for PostgreSQL sinks and
//! jobs. Each check has its own short timeout, and they run side by side.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Value, json};

use crate::config::{HostConfig, Pipeline, StoreLocation};
use crate::database::Database;
use crate::kafka::client_config;
use crate::object_store::S3Client;

/// How long one dependency may take to answer before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The services to check, decided once from the pipelines at start.
pub struct Dependencies {
    kafka: Option<Arc<BaseConsumer>>,
    s3: Option<(S3Client, Vec<String>)>,
    postgres: Option<Result<Database, String>>,
}

impl Dependencies {
    /// Nothing to check (a host without service-backed pipelines, or a test).
    pub fn none() -> Self {
        Dependencies { kafka: None, s3: None, postgres: None }
    }

    /// The services `pipelines` use. `s3` is the process's client, when any pipeline uses S3.
    pub fn of(pipelines: &[Pipeline], host: &HostConfig, s3: Option<S3Client>) -> Self {
        let uses_kafka =
            pipelines.iter().any(|p| p.source.needs().kafka || p.sinks.iter().any(|s| s.kind.needs().kafka));
        let kafka = uses_kafka.then(|| probe_consumer(host)).flatten();
        let buckets: BTreeSet<String> = pipelines.iter().flat_map(s3_buckets).collect();
        let uses_postgres = pipelines
            .iter()
            .any(|p| p.source.needs().postgres || p.sinks.iter().any(|s| s.kind.needs().postgres));
        let postgres = uses_postgres.then(|| Database::from_env(&host.postgres).map_err(|e| e.to_string()));
        Dependencies { kafka, s3: s3.map(|client| (client, buckets.into_iter().collect())), postgres }
    }

    /// Whether an S3 client is needed by [`Dependencies::of`].
    pub fn needs_s3(pipelines: &[Pipeline]) -> bool {
        pipelines.iter().any(|p| p.source.needs().s3 || !s3_buckets(p).is_empty())
    }

    /// Checks every dependency; `Ok` lists them as `"ok"`, `Err` also names each failure.
    pub async fn check(&self) -> Result<Value, Value> {
        let kafka = async {
            let Some(consumer) = &self.kafka else { return None };
            Some(check_kafka(consumer).await)
        };
        let s3 = async {
            let (client, buckets) = self.s3.as_ref()?;
            Some(check_s3(client, buckets).await)
        };
        let postgres = async {
            match self.postgres.as_ref()? {
                Ok(database) => Some(check_postgres(database).await),
                Err(problem) => Some(Err(problem.clone())),
            }
        };
        let (kafka, s3, postgres) = tokio::join!(kafka, s3, postgres);
        let mut report = serde_json::Map::new();
        let mut all_ok = true;
        for (name, outcome) in [("kafka", kafka), ("s3", s3), ("postgres", postgres)] {
            let Some(outcome) = outcome else { continue };
            all_ok &= outcome.is_ok();
            report.insert(name.into(), outcome.map_or_else(|problem| json!(problem), |()| json!("ok")));
        }
        if all_ok { Ok(Value::Object(report)) } else { Err(Value::Object(report)) }
    }
}

fn s3_buckets(pipeline: &Pipeline) -> Vec<String> {
    let tables = pipeline.sinks.iter().filter_map(|sink| sink.kind.store_location());
    let dead_letters = pipeline.dead_letters.iter().map(|config| config.location());
    tables
        .chain(dead_letters)
        .filter_map(|location| match location {
            StoreLocation::S3 { bucket, .. } => Some(bucket),
            StoreLocation::Local { .. } => None,
        })
        .collect()
}

fn probe_consumer(host: &HostConfig) -> Option<Arc<BaseConsumer>> {
    match client_config(&host.kafka, &[]).create() {
        Ok(consumer) => Some(Arc::new(consumer)),
        Err(error) => {
            tracing::warn!("readiness: cannot create a Kafka client: {error}");
            None
        }
    }
}

async fn check_kafka(consumer: &Arc<BaseConsumer>) -> Result<(), String> {
    let consumer = consumer.clone();
    // librdkafka blocks for the metadata round trip; keep it off the async workers.
    let outcome = tokio::task::spawn_blocking(move || {
        consumer.fetch_metadata(None, CHECK_TIMEOUT).map(|metadata| metadata.brokers().len())
    })
    .await
    .map_err(|error| format!("the broker check failed: {error}"))?;
    match outcome {
        Ok(0) => Err("the cluster reports no brokers".into()),
        Ok(_) => Ok(()),
        Err(error) => Err(format!("broker unreachable: {error}")),
    }
}

async fn check_s3(client: &S3Client, buckets: &[String]) -> Result<(), String> {
    let checked = async {
        if buckets.is_empty() {
            return client.check_reachable().await;
        }
        for name in buckets {
            match client.bucket(name).exists().await {
                Ok(true) => {}
                Ok(false) => return Err(format!("bucket `{name}` does not exist")),
                Err(error) => return Err(error.to_string()),
            }
        }
        Ok(())
    };
    tokio::time::timeout(CHECK_TIMEOUT, checked)
        .await
        .unwrap_or_else(|_| Err("S3 did not answer in time".into()))
}

async fn check_postgres(database: &Database) -> Result<(), String> {
    let checked = async {
        let client = database.connect().await.map_err(|e| e.to_string())?;
        client.simple_query("SELECT 1").await.map_err(|e| e.to_string())?;
        Ok(())
    };
    tokio::time::timeout(CHECK_TIMEOUT, checked)
        .await
        .unwrap_or_else(|_| Err("PostgreSQL did not answer in time".into()))
}
