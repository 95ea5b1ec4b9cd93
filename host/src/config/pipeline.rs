//! A pipeline definition: one source, a chain of plugin steps, and a sink per named output.
//!
//! ```toml
//! name = "user-status"
//! [source]
//! kind = "s3-job"
//! path = "/v1/jobs/user-status"
//! [[steps]]
//! plugin = "validate-user-status"          # input defaults to the source
//! [[steps]]
//! plugin = "explode-status-logs"
//! input = "validate-user-status.status_logs"
//! [[sinks]]
//! from = "validate-user-status.user_status"
//! kind = "postgres"
//! table = "user_status"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::plugin::limits::PluginLimitsConfig;

/// One pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub source: SourceConfig,
    #[serde(default)]
    pub steps: Vec<StepConfig>,
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    pub dead_letters: Option<DeadLetterConfig>,
    /// The file it was read from, for error messages and reloads.
    #[serde(skip)]
    pub file: PathBuf,
}

/// Where records enter the pipeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// Request/response: each HTTP body is one record and the answer waits for the sinks.
    Http {
        path: String,
        #[serde(default = "default_body_limit")]
        body_limit_bytes: usize,
    },
    /// An HTTP endpoint that stores raw bodies in a Kafka topic (acknowledged once stored),
    /// and a consumer group that feeds them to the steps.
    Webhook {
        path: String,
        topic: String,
        group: String,
        #[serde(default = "default_body_limit")]
        body_limit_bytes: usize,
        /// Environment variable holding the base64 DER P-256 public key; unset means no check.
        verification_key_env: Option<String>,
        #[serde(default = "default_signature_tolerance")]
        signature_tolerance_secs: u64,
        #[serde(flatten)]
        batching: Batching,
    },
    /// A Kafka topic read by a consumer group.
    Kafka {
        topic: String,
        group: String,
        #[serde(flatten)]
        batching: Batching,
    },
    /// Jobs that each name an S3 object to stream through the steps.
    S3Job {
        path: String,
        job_topic: String,
        group: String,
        #[serde(default = "default_batch_records")]
        batch_records: usize,
    },
}

impl SourceConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Http { .. } => "http",
            SourceConfig::Webhook { .. } => "webhook",
            SourceConfig::Kafka { .. } => "kafka",
            SourceConfig::S3Job { .. } => "s3-job",
        }
    }
}

/// How a consumer groups records into plugin calls.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batching {
    #[serde(default = "default_batch_records")]
    pub batch_records: usize,
    #[serde(default = "default_batch_max_ms")]
    pub batch_max_ms: u64,
}

/// One plugin call in the chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    pub plugin: String,
    /// `source`, or `<earlier step's plugin>.<output>`; defaults to the source.
    #[serde(default)]
    pub input: StepInput,
    /// Passed to the plugin's `init`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Overrides the host's limits for this plugin in this step.
    #[serde(default)]
    pub limits: PluginLimitsConfig,
}

/// What a step consumes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum StepInput {
    #[default]
    Source,
    Output { plugin: String, output: String },
}

impl TryFrom<String> for StepInput {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if text == "source" {
            return Ok(StepInput::Source);
        }
        match text.split_once('.') {
            Some((plugin, output)) if !plugin.is_empty() && !output.is_empty() => {
                Ok(StepInput::Output { plugin: plugin.to_string(), output: output.to_string() })
            }
            _ => Err(format!("`{text}` is neither `source` nor `<plugin>.<output>`")),
        }
    }
}

/// Where one named output of one step goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `<plugin>.<output>`.
    pub from: String,
    #[serde(flatten)]
    pub kind: SinkKind,
}

/// The kinds of sink, with their settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SinkKind {
    /// Sends each record to SendGrid's v3 mail/send; the HTTP answer carries the result.
    Sendgrid {},
    /// Produces each record to a topic.
    Kafka { topic: String },
    /// Hive-partitioned Parquet objects in S3.
    ParquetS3 {
        bucket: String,
        prefix: String,
        #[serde(default)]
        partition_by: Vec<String>,
        #[serde(flatten)]
        rotation: Rotation,
    },
    /// The same layout in a local directory, for the quick start.
    ParquetLocal {
        dir: PathBuf,
        #[serde(default)]
        partition_by: Vec<String>,
        #[serde(flatten)]
        rotation: Rotation,
    },
    /// Rows of a PostgreSQL table.
    Postgres {
        table: String,
        /// Columns that identify a row; a later record with the same key replaces it.
        #[serde(default)]
        upsert_key: Vec<String>,
        /// A column to fill with the job's start time.
        ingested_at_column: Option<String>,
    },
}

impl SinkKind {
    pub fn name(&self) -> &'static str {
        match self {
            SinkKind::Sendgrid {} => "sendgrid",
            SinkKind::Kafka { .. } => "kafka",
            SinkKind::ParquetS3 { .. } => "parquet-s3",
            SinkKind::ParquetLocal { .. } => "parquet-local",
            SinkKind::Postgres { .. } => "postgres",
        }
    }
}

/// When a Parquet file is closed and a new one started.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    #[serde(default = "default_rotate_records")]
    pub rotate_records: usize,
    #[serde(default = "default_rotate_bytes")]
    pub rotate_bytes: usize,
    #[serde(default = "default_rotate_ms")]
    pub rotate_ms: u64,
}

/// Where failed records go.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DeadLetterConfig {
    S3 { bucket: String, prefix: String },
    Local { dir: PathBuf },
}

fn default_body_limit() -> usize {
    5 << 20
}
fn default_signature_tolerance() -> u64 {
    600
}
fn default_batch_records() -> usize {
    500
}
fn default_batch_max_ms() -> u64 {
    1000
}
fn default_rotate_records() -> usize {
    100_000
}
fn default_rotate_bytes() -> usize {
    128 << 20
}
fn default_rotate_ms() -> u64 {
    60_000
}
