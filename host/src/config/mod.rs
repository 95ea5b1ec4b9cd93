//! Configuration: the host's settings (`sluice.toml`) and the pipeline definitions
//! (`pipelines/*.toml`), each one typed struct tree validated at load.

pub(crate) mod defaults;
mod error;
#[cfg(test)]
mod fuzz;
mod host;
mod pipeline;
mod validate;

pub use crate::source::SourceConfig;
pub use error::ConfigError;
pub use host::{
    AdminConfig, HostConfig, KafkaConfig, LogConfig, LogFormat, PluginsConfig, PostgresConfig, S3Config,
    SendgridConfig, ServerConfig,
};
pub use pipeline::{
    BodyFormat, DeadLetterConfig, Pipeline, SignatureConfig, SignatureScheme, SinkConfig, SinkKind,
    StepConfig, StepInput, StoreLocation,
};
pub use validate::{is_plain_name, load_pipeline_dir, load_pipeline_file, validate_pipeline};
