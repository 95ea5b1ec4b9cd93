//! `sluice sweep` for an `s3-job` pipeline: the records its jobs refused are run again through
//! the plugins installed now, and what passes is loaded into the tables.
//!
//! Each dead-letter object (`{prefix}/{job id}/….jsonl`) becomes a job of its own whose input
//! is that object's letters ([`JobInput::DeadLetters`]), run here by the same attempt as any
//! job: one transaction loads all the tables, and the (pipeline, object, ETag) job row makes
//! an object load at most once, so a sweep interrupted and run again loads nothing twice.
//! Letters that still fail become that job's own dead letters, written before its load
//! commits. Only after the job succeeded is the object moved under `{prefix}/swept/` (copied,
//! then deleted), so nothing is deleted before what it held is written elsewhere.

use tokio::sync::watch;

use super::pipeline::{JobPipeline, RunOutcome};
use super::records::{JobCounts, JobInput, JobRecord, JobRecordsError, JobState, ObjectVersion};
use crate::object_store::compression::decompress_bytes;
use crate::object_store::{ObjectMeta, ObjectStore, StoreError, join_key};
use crate::pipeline::sweep::SweepReport;
use crate::plugin::RecordIn;
use crate::sink::dead_letter::{DeadLetter, SWEPT_DIR, is_pending_letter};

/// Why a job pipeline's dead letters could not be swept.
#[derive(Debug, thiserror::Error)]
pub enum JobSweepError {
    #[error("pipeline `{0}` has no [dead_letters], so it has nothing to sweep")]
    NoDeadLetters(String),
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error(transparent)]
    Store(#[from] JobRecordsError),
    #[error("the sweep job {job} for {object} failed: {error}; the object stays where it is")]
    Failed { job: uuid::Uuid, object: String, error: String },
    #[error("{object}: cannot decompress it: {source}")]
    Compressed {
        object: String,
        #[source]
        source: std::io::Error,
    },
}

impl JobPipeline {
    /// The store and key prefix of the pipeline's dead letters.
    fn dead_letter_store(&self) -> Result<(&ObjectStore, &str), JobSweepError> {
        let target =
            self.dead_letters.as_ref().ok_or_else(|| JobSweepError::NoDeadLetters(self.name.clone()))?;
        Ok((&target.store, &target.prefix))
    }

    /// The dead-letter objects not swept yet, in key order.
    ///
    /// # Errors
    /// [`JobSweepError`] when the pipeline keeps no dead letters or the store cannot be listed.
    pub async fn pending_dead_letter_objects(&self) -> Result<Vec<ObjectMeta>, JobSweepError> {
        let (store, prefix) = self.dead_letter_store()?;
        let listed = store.list(&join_key(prefix, "")).await?;
        Ok(listed.into_iter().filter(|meta| is_pending_letter(prefix, &meta.key)).collect())
    }

    /// Sweeps one dead-letter object: loads what passes now as a job of its own, then moves the
    /// object under `swept/`. With `dry_run` the letters only run through the plugins, and
    /// nothing is written, loaded or moved.
    ///
    /// # Errors
    /// [`JobSweepError`] when a store fails or the object's job fails (the object stays).
    pub async fn sweep_dead_letter_object(
        &self,
        object: &ObjectMeta,
        dry_run: bool,
    ) -> Result<SweepReport, JobSweepError> {
        if dry_run {
            return self.try_dead_letter_object(object).await;
        }
        let (store, prefix) = self.dead_letter_store()?;
        let version = ObjectVersion {
            bucket: store_label(store),
            key: object.key.clone(),
            etag: object.etag.clone(),
            size: object.size,
        };
        let submission = self.store.create_or_get(&self.name, &version, JobInput::DeadLetters).await?;
        let mut job = submission.job;
        if job.state == JobState::Failed
            && let Some(requeued) = self.store.requeue_failed(job.id).await?
        {
            job = requeued;
        }
        if job.state != JobState::Succeeded {
            let (progress, _) = watch::channel(JobCounts::default());
            job = match self.run(job.id, &progress).await? {
                RunOutcome::Succeeded(job) | RunOutcome::AlreadyLoaded(job) => job,
                RunOutcome::Failed(job) => {
                    return Err(JobSweepError::Failed {
                        job: job.id,
                        object: store.describe(&object.key),
                        error: job.error.unwrap_or_default(),
                    });
                }
                RunOutcome::Unknown(id) => {
                    return Err(JobSweepError::Failed {
                        job: id,
                        object: store.describe(&object.key),
                        error: "the job row disappeared".into(),
                    });
                }
            };
        }
        let swept_key = join_key(
            &join_key(prefix, SWEPT_DIR),
            object.key.strip_prefix(prefix).unwrap_or(&object.key).trim_start_matches('/'),
        );
        store.copy(&object.key, &swept_key).await?;
        store.delete(&object.key).await?;
        let mut report = report_of(&job);
        report.objects_swept = 1;
        Ok(report)
    }

    /// What a sweep of `object` would load, without loading or moving anything.
    async fn try_dead_letter_object(&self, object: &ObjectMeta) -> Result<SweepReport, JobSweepError> {
        let (store, _) = self.dead_letter_store()?;
        let Some(bytes) = store.get(&object.key).await? else { return Ok(SweepReport::default()) };
        let bytes = decompress_bytes(bytes)
            .await
            .map_err(|source| JobSweepError::Compressed { object: store.describe(&object.key), source })?;
        let records: Vec<RecordIn> = bytes
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.trim_ascii().is_empty())
            .map(|line| RecordIn { key: None, value: letter_value(line), headers: Vec::new() })
            .collect();
        let letters = records.len();
        let mut output = self.chain.run(records.into()).await;
        output.settle_failures();
        let failed = output.failures.len();
        let rows = self
            .sinks
            .targets()
            .iter()
            .map(|sink| output.outputs.get(&sink.output).map_or(0, Vec::len))
            .sum();
        Ok(SweepReport {
            objects: 1,
            letters,
            passed: letters - failed.min(letters),
            still_failing: failed,
            rows,
            objects_swept: 0,
        })
    }
}

/// The record a dead-letter line holds: the letter's `value`, or the line itself when it is
/// not a letter (the plugins then refuse it again, and it is kept again).
fn letter_value(line: &[u8]) -> Vec<u8> {
    DeadLetter::parse_line(line).and_then(|letter| letter.value.to_bytes()).unwrap_or_else(|| line.to_vec())
}

/// What the job row names as the bucket of an object in `store`.
fn store_label(store: &ObjectStore) -> String {
    match store {
        ObjectStore::S3(bucket) => bucket.name().to_owned(),
        ObjectStore::Local(_) => store.describe(""),
    }
}

/// A finished sweep job as the sweep reports it.
fn report_of(job: &JobRecord) -> SweepReport {
    let counts = &job.counts;
    let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    SweepReport {
        objects: 1,
        letters: to_usize(counts.records_read),
        passed: to_usize(counts.records_read.saturating_sub(counts.records_failed)),
        still_failing: to_usize(counts.records_failed),
        rows: to_usize(counts.rows.values().sum()),
        objects_swept: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_letter_line_gives_back_the_refused_record() {
        let line = br#"{"job_id":"00000000-0000-0000-0000-000000000000","bucket":"b","key":"k","etag":"e","record":3,"value":"{\"a\":1}","reason":"r","step":"s","plugin_version":"s@1","trapped":false,"failed_at":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(letter_value(line), br#"{"a":1}"#.to_vec());
    }

    #[test]
    fn a_line_that_is_no_letter_is_run_as_it_is() {
        assert_eq!(letter_value(b"not a letter"), b"not a letter".to_vec());
    }
}
