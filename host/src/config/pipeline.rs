//! A pipeline definition: one source, a chain of plugin steps, and a sink per named output.
//!
//! ```toml
//! name = "orders"
//! [source]
//! kind = "s3-job"
//! path = "/v1/jobs/orders"
//! [[steps]]
//! plugin = "validate-orders"          # input defaults to the source
//! [[steps]]
//! plugin = "explode-order-lines"
//! input = "validate-orders.lines"
//! [[sinks]]
//! from = "validate-orders.orders"
//! kind = "postgres"
//! table = "orders"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::defaults::default_signature_tolerance;
use crate::plugin::limits::PluginLimitsConfig;
use crate::plugin::{PluginCall, PluginLimits};
pub use crate::sink::{SinkConfig, SinkKind};
pub use crate::source::SourceConfig;

/// One pipeline file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    /// SQL that creates the tables of the pipeline's `postgres` sinks, relative to this file;
    /// applied once per version of the file before the tables are looked at, so the tables
    /// belong to the pipeline and not to the host.
    pub tables_sql: Option<PathBuf>,
    /// The file it was read from, for error messages and reloads.
    #[serde(skip)]
    pub file: PathBuf,
}

impl Pipeline {
    /// Where `tables_sql` is: as written when absolute, else beside the pipeline file.
    pub fn tables_sql_path(&self) -> Option<PathBuf> {
        let sql = self.tables_sql.as_ref()?;
        Some(match self.file.parent() {
            Some(dir) if sql.is_relative() => dir.join(sql),
            _ => sql.clone(),
        })
    }
}

/// A webhook signature scheme: which headers carry it and where the public key comes from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureConfig {
    pub scheme: SignatureScheme,
    /// Environment variable holding the public key (base64 DER); unset or empty disables the
    /// check, which the host logs at start.
    pub public_key_env: String,
    pub signature_header: String,
    pub timestamp_header: String,
    /// How far the timestamp header may be from now, to refuse replays.
    #[serde(default = "default_signature_tolerance")]
    pub tolerance_secs: u64,
}

/// Supported signature schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SignatureScheme {
    /// ECDSA P-256 with SHA-256 over the timestamp header's bytes followed by the raw body;
    /// signature base64 DER (SendGrid's signed event webhook).
    #[serde(rename = "ecdsa-p256-sha256")]
    EcdsaP256Sha256,
}

/// The shape a webhook body must have to be stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyFormat {
    /// Any bytes.
    #[default]
    Any,
    /// A JSON value.
    Json,
    /// A JSON array.
    JsonArray,
}

/// One plugin call in the chain.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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

impl StepConfig {
    /// How this step calls its plugin: its `init` config, and its own limits over `base`.
    pub fn call(&self, base: PluginLimits) -> PluginCall {
        PluginCall {
            config: self.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            limits: self.limits.over(base),
        }
    }
}

/// What a step consumes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum StepInput {
    #[default]
    Source,
    Output {
        plugin: String,
        output: String,
    },
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

/// Where a Parquet sink or the dead letters keep their objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    S3 { bucket: String, prefix: String },
    Local { dir: PathBuf },
}

impl StoreLocation {
    /// The key prefix inside the store (a local directory is its own prefix).
    pub fn prefix(&self) -> &str {
        match self {
            StoreLocation::S3 { prefix, .. } => prefix,
            StoreLocation::Local { .. } => "",
        }
    }
}

/// Where failed records go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DeadLetterConfig {
    S3 { bucket: String, prefix: String },
    Local { dir: PathBuf },
}

impl DeadLetterConfig {
    pub fn location(&self) -> StoreLocation {
        match self {
            DeadLetterConfig::S3 { bucket, prefix } => {
                StoreLocation::S3 { bucket: bucket.clone(), prefix: prefix.clone() }
            }
            DeadLetterConfig::Local { dir } => StoreLocation::Local { dir: dir.clone() },
        }
    }
}
