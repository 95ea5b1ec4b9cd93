//! The host's own settings: where it listens, where plugins and pipelines live, and how to
//! reach Kafka, S3, PostgreSQL and SendGrid. Every key has a local default, so `sluice serve`
//! runs without a file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::plugin::{PluginLimits, limits::PluginLimitsConfig};

/// Root of `sluice.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    pub server: ServerConfig,
    pub plugins: PluginsConfig,
    pub pipelines: PipelinesConfig,
    pub kafka: KafkaConfig,
    pub s3: S3Config,
    pub postgres: PostgresConfig,
    pub sendgrid: SendgridConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
}

impl HostConfig {
    /// Reads `path`, or returns the defaults when `path` is `None`.
    ///
    /// # Errors
    /// When the file cannot be read or has unknown keys or wrong types.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else { return Ok(HostConfig::default()) };
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })
    }
}

/// The HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// How long SIGTERM waits for in-flight work before exiting anyway.
    pub shutdown_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8080)), shutdown_timeout_ms: 10_000 }
    }
}

/// Where plugins come from and the limits they run under.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    pub dir: PathBuf,
    /// Compiled `.cwasm` files, keyed by content hash.
    pub cache_dir: PathBuf,
    /// The largest memory cap any plugin may have; sizes the instance pool.
    pub max_memory_mb: u64,
    /// Limits for plugins without their own entry in `limits`.
    pub defaults: PluginLimitsConfig,
    /// Limits by plugin name; a pipeline step may tighten or widen them again.
    pub limits: BTreeMap<String, PluginLimitsConfig>,
    /// Whether a new or changed `*.wasm` in `dir` is loaded and swapped in while serving.
    pub watch: bool,
    /// How long the directory must be quiet before changed files are loaded, so a file
    /// copied in several writes is read once, whole.
    pub watch_debounce_ms: u64,
    /// How a canary candidate (`<name>.canary.wasm`, or an upload without settings of its own)
    /// is shared and judged.
    pub canary: crate::plugin::canary::CanarySettings,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: PathBuf::from(".run/plugins"),
            cache_dir: PathBuf::from(".run/cache/plugins"),
            max_memory_mb: 1024,
            defaults: PluginLimitsConfig::default(),
            limits: BTreeMap::new(),
            watch: true,
            watch_debounce_ms: 200,
            canary: crate::plugin::canary::CanarySettings::default(),
        }
    }
}

impl PluginsConfig {
    /// The limits plugin `name` runs under before any pipeline step setting.
    pub fn limits_for(&self, name: &str) -> PluginLimits {
        let base = self.defaults.over(PluginLimits::default());
        self.limits.get(name).map_or(base, |own| own.over(base))
    }
}

/// Where pipeline definitions live.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelinesConfig {
    pub dir: PathBuf,
}

impl Default for PipelinesConfig {
    fn default() -> Self {
        PipelinesConfig { dir: PathBuf::from("pipelines") }
    }
}

/// The Kafka cluster every Kafka source and sink uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    pub brokers: String,
    /// Extra librdkafka properties, passed through unchanged.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig { brokers: "127.0.0.1:9092".into(), properties: BTreeMap::new() }
    }
}

/// The S3 service; credentials come from the standard AWS chain, never from this file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// An endpoint override for S3-compatible servers; `None` means AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub force_path_style: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config { endpoint: None, region: "us-east-1".into(), force_path_style: false }
    }
}

/// PostgreSQL; the URL is read from an environment variable so it can hold a password.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    pub url_env: String,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig { url_env: "DATABASE_URL".into() }
    }
}

/// SendGrid's API; the key is read from an environment variable and never logged.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SendgridConfig {
    pub api_url: String,
    pub api_key_env: String,
    pub request_timeout_ms: u64,
    /// Attempts per mail, the first included.
    pub max_attempts: u32,
    /// Total time a mail may spend in retries before the caller gets 503.
    pub retry_budget_ms: u64,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// The longest a 429's `X-RateLimit-Reset` is obeyed; longer waits are cut to this.
    pub max_rate_limit_wait_ms: u64,
}

impl Default for SendgridConfig {
    fn default() -> Self {
        SendgridConfig {
            api_url: "https://api.sendgrid.com".into(),
            api_key_env: "SENDGRID_API_KEY".into(),
            request_timeout_ms: 10_000,
            max_attempts: 4,
            retry_budget_ms: 15_000,
            initial_backoff_ms: 200,
            max_backoff_ms: 4_000,
            max_rate_limit_wait_ms: 5_000,
        }
    }
}

/// The admin API (`/v1/admin/...`): plugin uploads and reloads.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Environment variable holding the bearer token; unset or empty turns the admin API off.
    /// The token itself never appears in a file or a log.
    pub token_env: String,
    /// The largest component an upload may carry.
    pub max_upload_mb: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { token_env: "SLUICE_ADMIN_TOKEN".into(), max_upload_mb: 64 }
    }
}

/// The host's log lines on stderr. Which lines is still `RUST_LOG`'s choice (default `info`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// How each log line is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text for a person at a terminal.
    #[default]
    Text,
    /// One JSON object per line for a log collector: `timestamp`, `level`, `target`, `message`
    /// and the event's fields at the top level, and the current span's fields under `span`.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<HostConfig, ConfigError> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, text).expect("write config");
        HostConfig::load(Some(&path))
    }

    #[test]
    fn logs_are_text_unless_the_file_asks_for_json() {
        assert_eq!(HostConfig::default().log.format, LogFormat::Text);
        assert_eq!(load("[server]\nshutdown_timeout_ms = 1\n").unwrap().log.format, LogFormat::Text);
        assert_eq!(load("[log]\nformat = \"text\"\n").unwrap().log.format, LogFormat::Text);
        assert_eq!(load("[log]\nformat = \"json\"\n").unwrap().log.format, LogFormat::Json);
    }

    #[test]
    fn another_log_format_is_refused_naming_the_file_the_key_and_the_formats() {
        let message = load("[log]\nformat = \"xml\"\n").unwrap_err().to_string();
        assert!(message.contains("sluice.toml"), "{message}");
        assert!(message.contains("format = \"xml\""), "{message}");
        assert!(message.contains("`text`") && message.contains("`json`"), "{message}");
    }

    #[test]
    fn an_unknown_log_key_is_refused() {
        let message = load("[log]\nlevel = \"debug\"\n").unwrap_err().to_string();
        assert!(message.contains("level"), "{message}");
    }
}
