//! Configuration: the host's settings (`sluice.toml`) and the pipeline definitions
//! (`pipelines/*.toml`), each one typed struct tree validated at load.

mod error;
#[cfg(test)]
mod fuzz;
mod host;
mod pairing;
mod pipeline;
mod validate;

pub use error::ConfigError;
pub use host::{
    AdminConfig, HostConfig, KafkaConfig, LogConfig, LogFormat, PluginsConfig, PostgresConfig, S3Config,
    SendgridConfig, ServerConfig,
};
pub use pairing::Pairing;
pub use pipeline::{
    BodyFormat, DeadLetterConfig, Pipeline, SignatureConfig, SignatureScheme, SinkConfig, SinkKind,
    SourceConfig, StepConfig, StepInput, StoreLocation, TableSinkSettings,
};
pub use validate::{is_plain_name, load_pipeline_dir, load_pipeline_file, validate_pipeline};
