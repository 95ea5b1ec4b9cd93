//! The `kafka` source: a topic read by a consumer group, whose connector writes the steps'
//! rows as table windows (see [`crate::pipeline::connector`]). The `webhook` source feeds a
//! connector the same way, and shares this module's rules for it.

use serde::Deserialize;

use super::{ConsumerSettings, allowed};
use crate::config::Pipeline;
use crate::config::defaults::{default_batch_max_ms, default_batch_records, default_members};
use crate::sink::Runner;

pub const KIND: &str = "kafka";

/// A connector writes windows and commits offsets after them.
pub const RUNNER: Runner = Runner::Connector;

/// The most consumer-group members one host runs for a pipeline; each holds its own batches,
/// plugin instances and windows.
pub const MAX_MEMBERS: usize = 64;

/// `[source]` with `kind = "kafka"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSource {
    pub topic: String,
    pub group: String,
    #[serde(default = "default_batch_records")]
    pub batch_records: usize,
    #[serde(default = "default_batch_max_ms")]
    pub batch_max_ms: u64,
    /// Consumer-group members this host runs for the pipeline (default: one per core). Each
    /// takes its share of the partitions with plugin instances of its own, so one host uses
    /// more than one core; each also holds its own batches and windows, so memory grows with it.
    #[serde(default = "default_members")]
    pub members: usize,
}

impl KafkaSource {
    pub fn consumer(&self) -> ConsumerSettings<'_> {
        ConsumerSettings {
            topic: &self.topic,
            group: &self.group,
            batch_records: self.batch_records,
            batch_max_ms: self.batch_max_ms,
            members: self.members,
        }
    }

    pub(super) fn problems(&self, pipeline: &Pipeline) -> Vec<(String, String)> {
        let mut problems = connector_problems(pipeline, "a `kafka` pipeline");
        problems.extend(members_problem(self.members));
        problems
    }
}

/// What a pipeline a connector reads needs besides its pairing: a sink to write, and dead
/// letters to keep what its plugins refuse. `what` names the pipeline in the messages.
pub(super) fn connector_problems(pipeline: &Pipeline, what: &str) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if pipeline.sinks.is_empty() {
        problems.push(("sinks".into(), format!("{what} needs at least one sink of {}", allowed(RUNNER))));
    }
    if pipeline.dead_letters.is_none() {
        problems.push((
            "dead_letters".into(),
            format!("{what} needs [dead_letters], so records its plugins refuse are kept"),
        ));
    }
    problems
}

/// `members` outside 1 to [`MAX_MEMBERS`].
pub(super) fn members_problem(members: usize) -> Option<(String, String)> {
    (!(1..=MAX_MEMBERS).contains(&members)).then(|| {
        (
            "source.members".into(),
            format!(
                "{members} is not allowed: use 1 to {MAX_MEMBERS} (more members than partitions stay idle)"
            ),
        )
    })
}
