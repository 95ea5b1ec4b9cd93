//! Where records enter a pipeline: one module per source kind, each owning its settings, their
//! checks, the sinks it can feed and how it is built into what serves it.
//!
//! | `kind` | module | what runs it ([`Runner`]) |
//! | --- | --- | --- |
//! | `http` | [`http`] | a request/reply endpoint: plugins, sinks, then the answer |
//! | `webhook` | [`webhook`] | an endpoint storing bodies in Kafka, then a connector like `kafka` |
//! | `kafka` | [`kafka`] | a consumer group's connector, writing windows |
//! | `s3-job` | [`s3_job`] | an endpoint queueing jobs, and a worker loading each in one transaction |
//!
//! The sinks a source can feed are those whose kind works under its runner (see
//! [`crate::sink`]). Adding a kind means a module here and a variant of [`SourceConfig`];
//! `sluice pipelines check` and `sluice serve` then refuse what it cannot run, by its own rules.

pub mod http;
pub mod kafka;
pub mod s3_job;
pub mod webhook;

use serde::Deserialize;

use crate::config::Pipeline;
use crate::sink::{Runner, kinds_under};

/// Where records enter the pipeline: the `[source]` table, by its `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SourceConfig {
    /// Request/response: each HTTP body is one record and the answer waits for the sinks.
    Http(http::HttpSource),
    /// An HTTP endpoint that stores raw bodies in a Kafka topic (acknowledged once stored),
    /// and a consumer group that feeds them to the steps.
    Webhook(webhook::WebhookSource),
    /// A Kafka topic read by a consumer group.
    Kafka(kafka::KafkaSource),
    /// Jobs that each name an S3 object to stream through the steps.
    S3Job(s3_job::S3JobSource),
}

/// What a connector reads: a topic, its consumer group, batching and members per host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerSettings<'a> {
    pub topic: &'a str,
    pub group: &'a str,
    pub batch_records: usize,
    pub batch_max_ms: u64,
    pub members: usize,
}

/// The services a source needs besides the host itself, for readiness checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceNeeds {
    pub kafka: bool,
    pub s3: bool,
    pub postgres: bool,
}

impl SourceConfig {
    /// The `kind` as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Http(_) => http::KIND,
            SourceConfig::Webhook(_) => webhook::KIND,
            SourceConfig::Kafka(_) => kafka::KIND,
            SourceConfig::S3Job(_) => s3_job::KIND,
        }
    }

    /// What drives this source's pipelines, which decides the sinks it can feed.
    pub fn runner(&self) -> Runner {
        match self {
            SourceConfig::Http(_) => http::RUNNER,
            SourceConfig::Webhook(_) => webhook::RUNNER,
            SourceConfig::Kafka(_) => kafka::RUNNER,
            SourceConfig::S3Job(_) => s3_job::RUNNER,
        }
    }

    /// The HTTP path the source serves, if it serves one.
    pub fn path(&self) -> Option<&str> {
        match self {
            SourceConfig::Http(source) => Some(&source.path),
            SourceConfig::Webhook(source) => Some(&source.path),
            SourceConfig::S3Job(source) => Some(&source.path),
            SourceConfig::Kafka(_) => None,
        }
    }

    /// What a connector reads for this pipeline, when one does (see [`Pipeline::runs_connector`]).
    pub fn consumer(&self) -> Option<ConsumerSettings<'_>> {
        match self {
            SourceConfig::Webhook(source) => Some(source.consumer()),
            SourceConfig::Kafka(source) => Some(source.consumer()),
            SourceConfig::Http(_) | SourceConfig::S3Job(_) => None,
        }
    }

    /// The services the source itself uses (its sinks may use more).
    pub fn needs(&self) -> SourceNeeds {
        match self {
            SourceConfig::Http(_) => SourceNeeds::default(),
            SourceConfig::Webhook(_) | SourceConfig::Kafka(_) => {
                SourceNeeds { kafka: true, ..SourceNeeds::default() }
            }
            SourceConfig::S3Job(_) => s3_job::NEEDS,
        }
    }

    /// Why `pipeline` (whose source this is) cannot run, as `(key, problem)`: sinks this kind
    /// cannot feed, then the kind's own rules. Empty when it can run.
    pub fn problems(&self, pipeline: &Pipeline) -> Vec<(String, String)> {
        let mut problems = pairing_problems(self.kind(), self.runner(), pipeline);
        problems.extend(match self {
            SourceConfig::Http(_) => Vec::new(),
            SourceConfig::Webhook(source) => source.problems(pipeline),
            SourceConfig::Kafka(source) => source.problems(pipeline),
            SourceConfig::S3Job(source) => source.problems(pipeline),
        });
        problems
    }
}

impl Pipeline {
    /// Whether a Kafka connector reads this pipeline's records: always for a `kafka` source;
    /// for a `webhook` source only with steps or sinks (a bare one only stores its bodies).
    pub fn runs_connector(&self) -> bool {
        match &self.source {
            SourceConfig::Kafka(_) => true,
            SourceConfig::Webhook(_) => webhook::runs_connector(self),
            SourceConfig::Http(_) | SourceConfig::S3Job(_) => false,
        }
    }

    /// Whether something on the host consumes this pipeline in the background (a connector or
    /// a job worker), which keeps the definition it started with until a restart.
    pub fn runs_in_background(&self) -> bool {
        self.runs_connector() || matches!(self.source, SourceConfig::S3Job(_))
    }
}

/// The sinks of `pipeline` a `source` source, driven by `runner`, cannot feed, as `(key, problem)`.
fn pairing_problems(source: &str, runner: Runner, pipeline: &Pipeline) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (index, sink) in pipeline.sinks.iter().enumerate() {
        if !sink.kind.runs_under(runner) {
            let kind = sink.kind.name();
            problems.push((
                format!("sinks[{index}].kind"),
                format!(
                    "the `{source}` source cannot feed a `{kind}` sink: {}; allowed for `{source}`: {}",
                    runner.because(),
                    allowed(runner)
                ),
            ));
        }
    }
    problems
}

/// The sink kinds `runner` drives, quoted, for messages.
fn allowed(runner: Runner) -> String {
    kinds_under(runner).iter().map(|kind| format!("`{kind}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SinkKind;

    fn pairing_problems(pipeline: &Pipeline) -> Vec<(String, String)> {
        pipeline.source.problems(pipeline)
    }

    const SOURCES: [(&str, &str); 4] = [
        ("http", "kind = \"http\"\npath = \"/p\"\n"),
        ("webhook", "kind = \"webhook\"\npath = \"/p\"\ntopic = \"t\"\ngroup = \"g\"\n"),
        ("kafka", "kind = \"kafka\"\ntopic = \"t\"\ngroup = \"g\"\n"),
        ("s3-job", "kind = \"s3-job\"\npath = \"/p\"\njob_topic = \"t\"\ngroup = \"g\"\n"),
    ];

    const SINKS: [(&str, &str); 6] = [
        ("sendgrid", "kind = \"sendgrid\"\n"),
        ("kafka", "kind = \"kafka\"\ntopic = \"t\"\n"),
        ("jsonl", "kind = \"jsonl\"\ndir = \"/tmp/t\"\n"),
        ("parquet-s3", "kind = \"parquet-s3\"\nbucket = \"b\"\nprefix = \"p\"\n"),
        ("parquet-local", "kind = \"parquet-local\"\ndir = \"/tmp/t\"\n"),
        ("postgres", "kind = \"postgres\"\ntable = \"t\"\n"),
    ];

    /// Every pairing, and whether it runs.
    const TABLE: [(&str, &str, bool); 24] = [
        ("http", "sendgrid", true),
        ("http", "kafka", true),
        ("http", "jsonl", false),
        ("http", "parquet-s3", false),
        ("http", "parquet-local", false),
        ("http", "postgres", false),
        ("webhook", "sendgrid", false),
        ("webhook", "kafka", true),
        ("webhook", "jsonl", true),
        ("webhook", "parquet-s3", true),
        ("webhook", "parquet-local", true),
        ("webhook", "postgres", false),
        ("kafka", "sendgrid", false),
        ("kafka", "kafka", true),
        ("kafka", "jsonl", true),
        ("kafka", "parquet-s3", true),
        ("kafka", "parquet-local", true),
        ("kafka", "postgres", false),
        ("s3-job", "sendgrid", false),
        ("s3-job", "kafka", false),
        ("s3-job", "jsonl", false),
        ("s3-job", "parquet-s3", false),
        ("s3-job", "parquet-local", false),
        ("s3-job", "postgres", true),
    ];

    fn settings(table: &[(&'static str, &'static str)], kind: &str) -> &'static str {
        table
            .iter()
            .find(|(name, _)| *name == kind)
            .map(|(_, text)| *text)
            .unwrap_or_else(|| panic!("{kind}"))
    }

    fn pipeline(source: &str, sinks: &[&str], steps: bool, dead_letters: bool) -> Pipeline {
        let mut text = format!("name = \"p\"\n[source]\n{}", settings(&SOURCES, source));
        if steps {
            text.push_str("[[steps]]\nplugin = \"a\"\n");
        }
        for sink in sinks {
            text.push_str(&format!("[[sinks]]\nfrom = \"a.out\"\n{}", settings(&SINKS, sink)));
        }
        if dead_letters {
            text.push_str("[dead_letters]\nkind = \"local\"\ndir = \"/tmp/dl\"\n");
        }
        toml::from_str(&text).unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    fn keys(problems: &[(String, String)]) -> Vec<&str> {
        problems.iter().map(|(key, _)| key.as_str()).collect()
    }

    #[test]
    fn each_source_kind_feeds_only_the_sinks_its_runner_drives() {
        for (source, sink, runs) in TABLE {
            let problems = pairing_problems(&pipeline(source, &["kafka", sink], true, true));
            let refused: Vec<&(String, String)> =
                problems.iter().filter(|(key, _)| key == "sinks[1].kind").collect();
            assert_eq!(refused.is_empty(), runs, "{source} → {sink}: {problems:?}");
            if let Some((_, problem)) = refused.first() {
                assert!(problem.contains(&format!("`{source}` source")), "{problem}");
                assert!(problem.contains(&format!("`{sink}` sink")), "{problem}");
                let allowed = kinds_under(pipeline(source, &[], false, false).source.runner());
                assert!(allowed.iter().all(|kind| problem.contains(&format!("`{kind}`"))), "{problem}");
            }
        }
        let rows = |source: &str| TABLE.iter().filter(|(s, _, _)| *s == source).count();
        assert!(SOURCES.iter().all(|(source, _)| rows(source) == SINKS.len()), "every pairing is listed");
    }

    /// The table says what the runners themselves build: a connector windowed sinks, a job
    /// PostgreSQL ones, a request/reply endpoint the answering ones.
    #[test]
    fn the_table_matches_what_each_runner_builds() {
        for (source, sink, runs) in TABLE {
            let built = pipeline(source, &[sink], true, true);
            let kind = &built.sinks[0].kind;
            let buildable = match source {
                "webhook" | "kafka" => {
                    matches!(
                        kind,
                        SinkKind::ParquetS3(_)
                            | SinkKind::ParquetLocal(_)
                            | SinkKind::Kafka(_)
                            | SinkKind::Jsonl(_)
                    )
                }
                "s3-job" => matches!(kind, SinkKind::Postgres(_)),
                _ => matches!(kind, SinkKind::Sendgrid(_) | SinkKind::Kafka(_)),
            };
            assert_eq!(buildable, runs, "{source} → {sink}");
        }
    }

    #[test]
    fn a_connector_pipeline_needs_a_sink_and_dead_letters() {
        assert_eq!(keys(&pairing_problems(&pipeline("kafka", &[], false, false))), ["sinks", "dead_letters"]);
        assert_eq!(
            keys(&pairing_problems(&pipeline("webhook", &[], true, false))),
            ["sinks", "dead_letters"]
        );
        assert_eq!(
            keys(&pairing_problems(&pipeline("kafka", &["parquet-s3"], true, false))),
            ["dead_letters"]
        );
        assert!(pairing_problems(&pipeline("webhook", &["parquet-local"], true, true)).is_empty());
        let (_, problem) = &pairing_problems(&pipeline("kafka", &[], true, true))[0];
        assert!(problem.contains("`kafka`, `jsonl`, `parquet-s3`, `parquet-local`"), "{problem}");
    }

    #[test]
    fn a_bare_webhook_only_stores_its_bodies_and_needs_nothing_more() {
        let bare = pipeline("webhook", &[], false, false);
        assert!(!bare.runs_connector());
        assert!(pairing_problems(&bare).is_empty());
    }

    #[test]
    fn request_and_job_pipelines_may_have_no_sinks() {
        assert!(pairing_problems(&pipeline("http", &[], true, false)).is_empty());
        assert!(pairing_problems(&pipeline("s3-job", &[], false, false)).is_empty());
        assert_eq!(keys(&pairing_problems(&pipeline("s3-job", &[], true, false))), ["dead_letters"]);
    }
}
