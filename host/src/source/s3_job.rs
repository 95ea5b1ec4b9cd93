//! The `s3-job` source: a request naming an S3 object queues a job (on a Kafka topic, so any
//! host of the group may run it), and the job streams the object's records through the steps
//! into PostgreSQL in one transaction (see [`crate::job`]).

use serde::Deserialize;

use super::SourceNeeds;
use crate::config::Pipeline;
use crate::config::defaults::{default_batch_records, default_job_partitions, default_max_record_bytes};
use crate::sink::Runner;

pub const KIND: &str = "s3-job";

/// A job loads every table of a file in one transaction.
pub const RUNNER: Runner = Runner::Job;

/// The job topic, the objects and the tables, and the job records in PostgreSQL.
pub const NEEDS: SourceNeeds = SourceNeeds { kafka: true, s3: true, postgres: true };

/// `[source]` with `kind = "s3-job"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3JobSource {
    pub path: String,
    pub job_topic: String,
    pub group: String,
    #[serde(default = "default_batch_records")]
    pub batch_records: usize,
    /// Partitions of the job topic when the host creates it: how many hosts of the group
    /// can run jobs at once.
    #[serde(default = "default_job_partitions")]
    pub job_partitions: i32,
    /// The largest single record the job reader accepts; bounds its memory per record.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: usize,
    /// The share of a file's records (0 to 1) that may be dead letters before the job
    /// fails and loads nothing; unset, a job fails only when every record is one (a file
    /// nobody can read is not a success).
    pub max_dead_letter_ratio: Option<f64>,
}

impl S3JobSource {
    /// Whether `dead_letters` of `records` read fail the job: past the configured share, or,
    /// with none configured, when every record of a non-empty input is a dead letter.
    pub fn too_many_dead_letters(&self, records: u64, dead_letters: u64) -> bool {
        if records == 0 {
            return false;
        }
        match self.max_dead_letter_ratio {
            // Counts far below 2^52 are exact as f64.
            #[allow(clippy::cast_precision_loss)]
            Some(ratio) => dead_letters as f64 / records as f64 > ratio,
            None => dead_letters >= records,
        }
    }

    pub(super) fn problems(&self, pipeline: &Pipeline) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !pipeline.steps.is_empty() && pipeline.dead_letters.is_none() {
            problems.push((
                "dead_letters".into(),
                "an `s3-job` pipeline with steps needs [dead_letters], so records its plugins refuse are kept".into(),
            ));
        }
        if let Some(ratio) = self.max_dead_letter_ratio
            && !(0.0..=1.0).contains(&ratio)
        {
            problems.push((
                "source.max_dead_letter_ratio".into(),
                format!("{ratio} is not allowed: use a share from 0 (no dead letter) to 1 (any number)"),
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(max_dead_letter_ratio: Option<f64>) -> S3JobSource {
        S3JobSource {
            path: "/v1/jobs/x".into(),
            job_topic: "t".into(),
            group: "g".into(),
            batch_records: 10,
            job_partitions: 1,
            max_record_bytes: 1024,
            max_dead_letter_ratio,
        }
    }

    #[test]
    fn by_default_only_a_file_of_nothing_but_dead_letters_fails() {
        let default = source(None);
        assert!(default.too_many_dead_letters(3, 3));
        assert!(!default.too_many_dead_letters(3, 2));
        assert!(!default.too_many_dead_letters(0, 0), "an empty file loads nothing and fails nothing");
    }

    #[test]
    fn a_ratio_fails_the_job_past_that_share() {
        let tenth = source(Some(0.1));
        assert!(!tenth.too_many_dead_letters(100, 10));
        assert!(tenth.too_many_dead_letters(100, 11));
        assert!(source(Some(0.0)).too_many_dead_letters(100, 1));
        assert!(!source(Some(1.0)).too_many_dead_letters(100, 100), "1 accepts any number");
    }
}
