//! Prometheus metrics: the names every part of the host records under, and the one recorder
//! per process that `/metrics` renders.
//!
//! Recording is a no-op until [`install`] runs, so libraries and unit tests record freely.

use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests answered, by `route`, `method` and `status`.
pub const HTTP_REQUESTS: &str = "sluice_http_requests_total";
/// Time to answer an HTTP request, by `route`.
pub const HTTP_DURATION: &str = "sluice_http_request_duration_seconds";
/// Records written to Kafka, by `topic` and `outcome` (`ok` or `error`).
pub const KAFKA_PRODUCED: &str = "sluice_kafka_produced_total";
/// Time from send to the broker's delivery report, by `topic`.
pub const KAFKA_PRODUCE_DURATION: &str = "sluice_kafka_produce_duration_seconds";
/// Records read from Kafka by a consumer group, by `group` and `topic`.
pub const KAFKA_CONSUMED: &str = "sluice_kafka_consumed_total";
/// Records between a group's position and the partition's end, by `group`, `topic` and
/// `partition`, as librdkafka's statistics report it.
pub const KAFKA_CONSUMER_LAG: &str = "sluice_kafka_consumer_lag";
/// Partitions a consumer-group member owns now, by `group` and `member` (its number in the
/// process); 0 until the group assigned it some.
pub const KAFKA_ASSIGNED_PARTITIONS: &str = "sluice_kafka_assigned_partitions";
/// Plugin batch calls, by `plugin`.
pub const PLUGIN_CALLS: &str = "sluice_plugin_calls_total";
/// Time of one plugin batch call (instantiate, init, transform), by `plugin`.
pub const PLUGIN_DURATION: &str = "sluice_plugin_call_duration_seconds";
/// Records a plugin failed (whole or in part), by `plugin`.
pub const PLUGIN_FAILED_RECORDS: &str = "sluice_plugin_failed_records_total";
/// Batches a plugin rejected whole, by `plugin`.
pub const PLUGIN_BATCH_ERRORS: &str = "sluice_plugin_batch_errors_total";
/// Calls the sandbox stopped, by `plugin` and `kind` (`timeout`, `memory`, `trap`).
pub const PLUGIN_TRAPS: &str = "sluice_plugin_traps_total";
/// Plugin versions offered by the watcher or an upload, by `plugin` and `outcome`
/// (`swapped`, `unchanged`, `rejected`).
pub const PLUGIN_RELOADS: &str = "sluice_plugin_reloads_total";
/// Batches offered to a shadowing candidate, by `plugin`, `candidate_version` and `outcome`
/// (`compared`, `skipped` while it was busy, `trapped`).
pub const SHADOW_BATCHES: &str = "sluice_shadow_batches_total";
/// Rows of compared batches, by `plugin`, `candidate_version` and `outcome` (`equal`,
/// `changed`, `missing`: only the current version made it, `extra`: only the candidate).
pub const SHADOW_ROWS: &str = "sluice_shadow_rows_total";
/// Records whose failure differs between the versions, by `plugin`, `candidate_version` and
/// `change` (`appeared`, `disappeared`, `changed` reason).
pub const SHADOW_FAILURES: &str = "sluice_shadow_failures_total";
/// Time of one candidate call on a shadowed batch, by `plugin` and `candidate_version`.
pub const SHADOW_DURATION: &str = "sluice_shadow_call_duration_seconds";
/// Records a canary rollout ran, by `plugin`, `version` (the candidate's or the current one's),
/// `role` (`candidate` or `current`) and `outcome` (`ok` or `failed`).
pub const CANARY_RECORDS: &str = "sluice_canary_records_total";
/// Canaries put back to the current version, by `plugin`, `candidate_version` and `reason`
/// (`failure_ratio` or `traps`).
pub const CANARY_ROLLBACKS: &str = "sluice_canary_rollbacks_total";
/// Parquet objects written by a connector's table sinks, by `pipeline`.
pub const OBJECTS_WRITTEN: &str = "sluice_sink_objects_total";
/// Bytes of those objects, by `pipeline`.
pub const OBJECT_BYTES_WRITTEN: &str = "sluice_sink_bytes_total";
/// Rows written to tables, by `pipeline`.
pub const TABLE_ROWS: &str = "sluice_sink_rows_total";
/// Dead letters written, by `pipeline`.
pub const DEAD_LETTERS: &str = "sluice_dead_letters_total";
/// Job attempts finished, by `pipeline` and `outcome` (`succeeded` or `failed`).
pub const JOBS: &str = "sluice_jobs_total";
/// Records job attempts read, by `pipeline`.
pub const JOB_RECORDS: &str = "sluice_job_records_total";

/// Histogram buckets for every `*_seconds` metric: 100 µs to 30 s.
const SECONDS_BUCKETS: &[f64] =
    &[0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Installs the process-wide Prometheus recorder and keeps its histograms trimmed.
///
/// # Errors
/// When a recorder is already installed.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .install_recorder()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
