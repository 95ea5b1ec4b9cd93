//! Which sinks each source kind can feed, and what else its pipeline needs to run.
//!
//! Each source kind is built into a different runner (a request handler, a Kafka connector, a
//! job), and each runner drives only some sink kinds. This is the one table of them, checked
//! at load, so `sluice pipelines check` refuses what `sluice serve` could not run and no
//! pipeline is ever served with a sink left out.

use super::pipeline::{Pipeline, SourceConfig};

/// The sink kinds one source kind can feed, and why only those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pairing {
    /// Sink kinds as written in a sink's `kind`.
    pub sinks: &'static [&'static str],
    /// What runs the pipeline, which decides the sinks; said in the error.
    pub because: &'static str,
}

impl SourceConfig {
    /// The sink kinds this source can feed.
    pub fn pairing(&self) -> Pairing {
        match self {
            SourceConfig::Http { .. } => Pairing {
                sinks: &["sendgrid", "kafka"],
                because: "its sinks act while the request waits for its answer",
            },
            SourceConfig::Webhook { .. } | SourceConfig::Kafka { .. } => Pairing {
                sinks: &["parquet-s3", "parquet-local"],
                because: "its connector writes table files per window and commits offsets after them",
            },
            SourceConfig::S3Job { .. } => Pairing {
                sinks: &["postgres"],
                because: "a job loads its rows into PostgreSQL tables in one transaction",
            },
        }
    }
}

impl Pipeline {
    /// Whether a Kafka connector reads this pipeline's records: always for a `kafka` source;
    /// for a `webhook` source only with steps or sinks (a bare one only stores its bodies).
    pub fn runs_connector(&self) -> bool {
        match &self.source {
            SourceConfig::Kafka { .. } => true,
            SourceConfig::Webhook { .. } => !self.steps.is_empty() || !self.sinks.is_empty(),
            SourceConfig::Http { .. } | SourceConfig::S3Job { .. } => false,
        }
    }
}

/// Why `pipeline` cannot run with its source, as `(key, problem)`; empty when it can.
pub(super) fn pairing_problems(pipeline: &Pipeline) -> Vec<(String, String)> {
    let source = pipeline.source.kind();
    let pairing = pipeline.source.pairing();
    let allowed = || pairing.sinks.iter().map(|kind| format!("`{kind}`")).collect::<Vec<_>>().join(", ");
    let mut problems = Vec::new();
    for (index, sink) in pipeline.sinks.iter().enumerate() {
        let kind = sink.kind.name();
        if !pairing.sinks.contains(&kind) {
            problems.push((
                format!("sinks[{index}].kind"),
                format!(
                    "the `{source}` source cannot feed a `{kind}` sink: {}; allowed for `{source}`: {}",
                    pairing.because,
                    allowed()
                ),
            ));
        }
    }
    if pipeline.runs_connector() {
        let pipeline_kind = match pipeline.source {
            SourceConfig::Webhook { .. } => "a `webhook` pipeline with steps or sinks",
            _ => "a `kafka` pipeline",
        };
        if pipeline.sinks.is_empty() {
            problems
                .push(("sinks".into(), format!("{pipeline_kind} needs at least one sink of {}", allowed())));
        }
        if pipeline.dead_letters.is_none() {
            problems.push((
                "dead_letters".into(),
                format!("{pipeline_kind} needs [dead_letters], so records its plugins refuse are kept"),
            ));
        }
    }
    if matches!(pipeline.source, SourceConfig::S3Job { .. })
        && !pipeline.steps.is_empty()
        && pipeline.dead_letters.is_none()
    {
        problems.push((
            "dead_letters".into(),
            "an `s3-job` pipeline with steps needs [dead_letters], so records its plugins refuse are kept"
                .into(),
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SinkKind;

    const SOURCES: [(&str, &str); 4] = [
        ("http", "kind = \"http\"\npath = \"/p\"\n"),
        ("webhook", "kind = \"webhook\"\npath = \"/p\"\ntopic = \"t\"\ngroup = \"g\"\n"),
        ("kafka", "kind = \"kafka\"\ntopic = \"t\"\ngroup = \"g\"\n"),
        ("s3-job", "kind = \"s3-job\"\npath = \"/p\"\njob_topic = \"t\"\ngroup = \"g\"\n"),
    ];

    const SINKS: [(&str, &str); 5] = [
        ("sendgrid", "kind = \"sendgrid\"\n"),
        ("kafka", "kind = \"kafka\"\ntopic = \"t\"\n"),
        ("parquet-s3", "kind = \"parquet-s3\"\nbucket = \"b\"\nprefix = \"p\"\n"),
        ("parquet-local", "kind = \"parquet-local\"\ndir = \"/tmp/t\"\n"),
        ("postgres", "kind = \"postgres\"\ntable = \"t\"\n"),
    ];

    /// Every pairing, and whether it runs.
    const TABLE: [(&str, &str, bool); 20] = [
        ("http", "sendgrid", true),
        ("http", "kafka", true),
        ("http", "parquet-s3", false),
        ("http", "parquet-local", false),
        ("http", "postgres", false),
        ("webhook", "sendgrid", false),
        ("webhook", "kafka", false),
        ("webhook", "parquet-s3", true),
        ("webhook", "parquet-local", true),
        ("webhook", "postgres", false),
        ("kafka", "sendgrid", false),
        ("kafka", "kafka", false),
        ("kafka", "parquet-s3", true),
        ("kafka", "parquet-local", true),
        ("kafka", "postgres", false),
        ("s3-job", "sendgrid", false),
        ("s3-job", "kafka", false),
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
                let allowed = pipeline(source, &[], false, false).source.pairing().sinks;
                assert!(allowed.iter().all(|kind| problem.contains(&format!("`{kind}`"))), "{problem}");
            }
        }
        let rows = |source: &str| TABLE.iter().filter(|(s, _, _)| *s == source).count();
        assert!(SOURCES.iter().all(|(source, _)| rows(source) == SINKS.len()), "every pairing is listed");
    }

    /// The table says what the runners themselves require: a connector builds table sinks
    /// (`SinkKind::table`), a job PostgreSQL ones.
    #[test]
    fn the_table_matches_what_each_runner_builds() {
        for (source, sink, runs) in TABLE {
            let built = pipeline(source, &[sink], true, true);
            let kind = &built.sinks[0].kind;
            let buildable = match source {
                "webhook" | "kafka" => kind.table().is_some(),
                "s3-job" => matches!(kind, SinkKind::Postgres { .. }),
                _ => matches!(kind, SinkKind::Sendgrid { .. } | SinkKind::Kafka { .. }),
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
        assert!(problem.contains("`parquet-s3`, `parquet-local`"), "{problem}");
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
