//! Where a pipeline's named outputs go: one folder per sink kind, and the kind list.
//!
//! | `kind` | folder | runs under | what it writes |
//! |---|---|---|---|
//! | `parquet-s3`, `parquet-local` | [`parquet`] | connector | Hive-partitioned Parquet files per window, in S3 or a directory |
//! | `kafka` | [`kafka`] | connector, request/reply | one JSON record per row, produced to a topic |
//! | `jsonl` | [`jsonl`] | connector | one object of JSON lines per window, in S3 or a directory |
//! | `postgres` | [`postgres`] | job | rows of a table; every table of a load in one transaction |
//! | `sendgrid` | [`sendgrid`] | request/reply | each row sent as a SendGrid v3 mail |
//!
//! Each kind's folder owns its settings (the struct its variant of [`SinkKind`] holds), what
//! it needs, and what builds it for the runners it works under. A source kind says which
//! [`Runner`] drives its pipeline; a sink kind says which runners it works under, and a pipeline
//! pairing a source with a sink its runner cannot drive is refused before anything starts. The
//! connector and `sluice sweep` write through [`windowed`], and jobs through [`transactional`],
//! whatever the kind. Adding a kind is its folder, a variant here with its arms below, and its
//! tests.

pub mod dead_letter;
pub mod jsonl;
pub mod kafka;
pub mod parquet;
pub mod postgres;
pub mod sendgrid;
pub mod transactional;
pub mod window_stem;
pub mod windowed;

use serde::Deserialize;

use crate::config::StoreLocation;
use crate::plugin::PluginRegistry;
use transactional::{LoadContext, TransactionalSinkError, TransactionalSinks};
use windowed::{BuildContext, WindowedSink, WindowedSinkError};

/// Where one named output of one step goes.
///
/// Unknown keys are refused by the kind's own settings (serde cannot deny them here, on the
/// struct that flattens the kind).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SinkConfig {
    /// `<plugin>.<output>`.
    pub from: String,
    #[serde(flatten)]
    pub kind: SinkKind,
}

/// The sink kinds, each with its settings, as a sink's `kind` names them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SinkKind {
    Sendgrid(sendgrid::SendgridSinkSettings),
    Kafka(kafka::KafkaSinkSettings),
    Jsonl(jsonl::JsonlSinkSettings),
    ParquetS3(parquet::ParquetS3Settings),
    ParquetLocal(parquet::ParquetLocalSettings),
    Postgres(postgres::PostgresSinkSettings),
}

/// What drives a pipeline's sinks; a source kind decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// An HTTP request waits for the sinks before it is answered.
    RequestReply,
    /// A consumer group's member writes windows per Kafka partition and commits offsets after
    /// them.
    Connector,
    /// A job loads a whole object in one transaction.
    Job,
}

impl Runner {
    /// Why only some sinks work under this runner, for messages.
    pub fn because(self) -> &'static str {
        match self {
            Runner::RequestReply => "its sinks act while the request waits for its answer",
            Runner::Connector => {
                "its connector writes windows per Kafka partition and commits offsets after them"
            }
            Runner::Job => "a job loads its rows into PostgreSQL tables in one transaction",
        }
    }
}

/// Every sink kind as a sink's `kind` names it, and the runners it works under.
pub const KINDS: [(&str, &[Runner]); 6] = [
    ("sendgrid", &[Runner::RequestReply]),
    ("kafka", &[Runner::RequestReply, Runner::Connector]),
    ("jsonl", &[Runner::Connector]),
    ("parquet-s3", &[Runner::Connector]),
    ("parquet-local", &[Runner::Connector]),
    ("postgres", &[Runner::Job]),
];

/// The kinds that work under `runner`, in [`KINDS`] order.
pub fn kinds_under(runner: Runner) -> Vec<&'static str> {
    KINDS.iter().filter(|(_, runners)| runners.contains(&runner)).map(|(name, _)| *name).collect()
}

/// The services a sink uses, for readiness checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkNeeds {
    pub kafka: bool,
    pub postgres: bool,
}

impl SinkKind {
    /// The `kind` as written in the file.
    pub fn name(&self) -> &'static str {
        match self {
            SinkKind::Sendgrid(_) => "sendgrid",
            SinkKind::Kafka(_) => "kafka",
            SinkKind::Jsonl(_) => "jsonl",
            SinkKind::ParquetS3(_) => "parquet-s3",
            SinkKind::ParquetLocal(_) => "parquet-local",
            SinkKind::Postgres(_) => "postgres",
        }
    }

    /// Whether `runner` can drive this sink.
    pub fn runs_under(&self, runner: Runner) -> bool {
        let name = self.name();
        KINDS.iter().any(|(kind, runners)| *kind == name && runners.contains(&runner))
    }

    /// The services the sink uses (S3 is checked by its location, as dead letters' are).
    pub fn needs(&self) -> SinkNeeds {
        match self {
            SinkKind::Kafka(_) => SinkNeeds { kafka: true, ..SinkNeeds::default() },
            SinkKind::Postgres(_) => SinkNeeds { postgres: true, ..SinkNeeds::default() },
            SinkKind::Sendgrid(_)
            | SinkKind::Jsonl(_)
            | SinkKind::ParquetS3(_)
            | SinkKind::ParquetLocal(_) => SinkNeeds::default(),
        }
    }

    /// Whether the sink fixed its columns from the output's schema when it started, so a
    /// plugin version that changes them cannot be swapped in until the host restarts.
    pub fn fixes_columns(&self) -> bool {
        matches!(self, SinkKind::ParquetS3(_) | SinkKind::ParquetLocal(_) | SinkKind::Postgres(_))
    }

    /// Where the sink keeps objects, for a kind that writes to a store (readiness checks its
    /// bucket as it checks the dead letters').
    pub fn store_location(&self) -> Option<StoreLocation> {
        match self {
            SinkKind::ParquetS3(_) | SinkKind::ParquetLocal(_) => self.parquet().map(|table| table.location),
            SinkKind::Jsonl(settings) => Some(settings.location.clone()),
            SinkKind::Sendgrid(_) | SinkKind::Kafka(_) | SinkKind::Postgres(_) => None,
        }
    }

    /// The Parquet table settings, for a `parquet-*` sink.
    pub fn parquet(&self) -> Option<parquet::TableSinkSettings> {
        match self {
            SinkKind::ParquetS3(settings) => Some(settings.table()),
            SinkKind::ParquetLocal(settings) => Some(settings.table()),
            _ => None,
        }
    }
}

impl SinkConfig {
    /// Builds the sink for a connector or `sluice sweep`.
    ///
    /// # Errors
    /// [`WindowedSinkError`] when the kind does not work under a connector, the output is not
    /// declared, or the sink's store or producer cannot be set up.
    pub async fn windowed(
        &self,
        context: &BuildContext<'_>,
    ) -> Result<Box<dyn WindowedSink>, WindowedSinkError> {
        match &self.kind {
            SinkKind::ParquetS3(settings) => {
                parquet::build_windowed(&self.from, settings.table(), context).await
            }
            SinkKind::ParquetLocal(settings) => {
                parquet::build_windowed(&self.from, settings.table(), context).await
            }
            SinkKind::Kafka(settings) => kafka::build_windowed(&self.from, settings, context).await,
            SinkKind::Jsonl(settings) => jsonl::build_windowed(&self.from, settings, context).await,
            SinkKind::Sendgrid(_) | SinkKind::Postgres(_) => {
                Err(WindowedSinkError::NotWindowed { from: self.from.clone(), kind: self.kind.name() })
            }
        }
    }
}

/// Builds a job pipeline's sinks, which load as one.
///
/// # Errors
/// [`TransactionalSinkError`] when a sink's kind does not work under a job, an output is not
/// declared, or the sinks cannot be set up.
pub async fn transactional(
    context: &LoadContext<'_>,
) -> Result<Box<dyn TransactionalSinks>, TransactionalSinkError> {
    let mut tables = Vec::with_capacity(context.pipeline.sinks.len());
    for sink in &context.pipeline.sinks {
        match &sink.kind {
            SinkKind::Postgres(settings) => tables.push((sink.from.as_str(), settings)),
            other => {
                return Err(TransactionalSinkError::NotTransactional {
                    output: sink.from.clone(),
                    kind: other.name(),
                    allowed: kinds_under(Runner::Job)
                        .iter()
                        .map(|kind| format!("`{kind}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    Ok(Box::new(postgres::PostgresSinks::build(&tables, context).await?))
}

/// The columns `<plugin>.<output>` declares, from the plugin loaded now.
pub fn output_schema(
    registry: &PluginRegistry,
    from: &str,
) -> Option<std::sync::Arc<crate::plugin::schema::OutputSchema>> {
    let (plugin, output) = from.split_once('.')?;
    let handle = registry.get(plugin)?;
    let current = handle.current();
    current.info().output(output).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> SinkKind {
        let config: SinkConfig = toml::from_str(&format!("from = \"a.b\"\n{text}")).expect(text);
        config.kind
    }

    #[test]
    fn every_kind_is_listed_with_the_name_its_file_uses() {
        let kinds = [
            kind("kind = \"sendgrid\""),
            kind("kind = \"kafka\"\ntopic = \"t\""),
            kind("kind = \"jsonl\"\ndir = \"/tmp/rows\""),
            kind("kind = \"parquet-s3\"\nbucket = \"b\"\nprefix = \"p\""),
            kind("kind = \"parquet-local\"\ndir = \"/tmp/t\""),
            kind("kind = \"postgres\"\ntable = \"t\""),
        ];
        let names: Vec<&str> = kinds.iter().map(SinkKind::name).collect();
        let listed: Vec<&str> = KINDS.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, listed);
    }

    #[test]
    fn each_runner_drives_its_kinds() {
        assert_eq!(kinds_under(Runner::RequestReply), ["sendgrid", "kafka"]);
        assert_eq!(kinds_under(Runner::Connector), ["kafka", "jsonl", "parquet-s3", "parquet-local"]);
        assert_eq!(kinds_under(Runner::Job), ["postgres"]);
        assert!(kind("kind = \"kafka\"\ntopic = \"t\"").runs_under(Runner::Connector));
        assert!(!kind("kind = \"postgres\"\ntable = \"t\"").runs_under(Runner::Connector));
    }

    #[test]
    fn a_kinds_settings_refuse_unknown_keys() {
        let refused =
            toml::from_str::<SinkConfig>("from = \"a.b\"\nkind = \"kafka\"\ntopic = \"t\"\nbucket = \"b\"");
        assert!(refused.is_err(), "{refused:?}");
    }
}
