//! One attempt at a job: stream the object through the plugin chain into the pipeline's sinks,
//! which load as one (see [`crate::sink::transactional`]), then commit the load with the job's
//! record.
//!
//! Reading, plugin calls and the sinks' writes overlap: a reader task splits the object into
//! batches, this task runs the chain, and one task per sink writes its rows. The channels
//! between them hold two batches each, so memory is bounded by the batch size whatever the
//! object's size. Nothing is visible before the load commits, which also marks the job
//! succeeded; a crash at any point leaves the sinks as they were.
//!
//! The parts: [`input`] reads the object in batches and runs each batch's chain on a task;
//! this module opens the load, routes each batch's rows and refusals, and commits.

mod input;

use std::collections::VecDeque;

use chrono::Utc;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio_postgres::Client;
use uuid::Uuid;

use super::dead_letters::{JobDeadLetters, RecordPlace, job_dead_letter};
use super::pipeline::JobPipeline;
use super::reader::{ReadError, RecordReader, Shape};
use super::records::{
    FailureSample, JobCounts, JobInput, JobRecord, JobRecordsError, JobState, lock_for_commit, record_success,
};
use crate::object_store::compression::{Compression, decompressed};
use crate::object_store::{ObjectStore, StoreError};
use crate::pipeline::ChainOutput;
use crate::plugin::RecordIn;
use crate::sink::transactional::{
    CommitRecord, Committed, LoadAttempt, LoadFailure, LoadMessage, LoadRow, LoadWriter, Written,
};
use crate::telemetry;
use input::{ChainRun, InputRecord, read_batches};

/// How many refused records a job keeps as examples.
const FAILURE_SAMPLES: usize = 20;
/// Batches whose plugin chains run at once. The attempt waits on its chains most of the
/// time; a third in flight keeps a core busy while one chain's rows are rendered for its next
/// step (1M records: 2.74–2.84 s with two, 2.62–2.73 s with three, four no better).
const CHAINS_IN_FLIGHT: usize = 3;
/// Batches buffered between the tasks of an attempt.
const CHANNEL_BATCHES: usize = 2;

/// Why an attempt failed; it loaded nothing.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("s3://{bucket}/{key} no longer exists")]
    ObjectGone { bucket: String, key: String },
    #[error(
        "s3://{bucket}/{key} changed since the job was requested (ETag {requested}, now {found}); \
         request it again to load the new version"
    )]
    ObjectChanged { bucket: String, key: String, requested: String, found: String },
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Load(#[from] LoadFailure),
    #[error(transparent)]
    Store(#[from] JobRecordsError),
    #[error("the job's {0} task stopped unexpectedly")]
    TaskLost(&'static str),
    #[error("cannot keep the records the plugins refused: {0}")]
    DeadLetters(StoreError),
    #[error("a plugin refused record {record} and the pipeline has no [dead_letters] to keep it")]
    NowhereToKeep { record: u64 },
    #[error("the job sweeps dead letters, but the pipeline has no [dead_letters] any more")]
    NoDeadLetterStore,
    #[error(
        "{dead_letters} of the {records} records are dead letters ({limit}), so nothing was loaded; \
         the file was read as {shape}, and the first dead letter is {first}"
    )]
    TooManyDeadLetters { records: u64, dead_letters: u64, limit: String, shape: String, first: String },
}

/// How an attempt that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// This attempt moved the rows into the tables.
    Loaded,
    /// Another attempt finished first; this one's rows were discarded.
    LoadedElsewhere,
}

/// What an attempt counted, kept whether it succeeds or not.
#[derive(Debug, Default, Clone)]
pub struct AttemptReport {
    pub counts: JobCounts,
    pub failures: Vec<FailureSample>,
}

/// One attempt of one job.
pub struct Attempt<'a> {
    pipeline: &'a JobPipeline,
    job: &'a JobRecord,
    progress: &'a watch::Sender<JobCounts>,
    report: AttemptReport,
    letters: Option<JobDeadLetters>,
    /// Where and why the first refused record was refused, for a job that fails on them.
    first_dead_letter: Option<String>,
}

impl<'a> Attempt<'a> {
    pub fn new(
        pipeline: &'a JobPipeline,
        job: &'a JobRecord,
        progress: &'a watch::Sender<JobCounts>,
    ) -> Self {
        Attempt {
            pipeline,
            job,
            progress,
            report: AttemptReport::default(),
            letters: None,
            first_dead_letter: None,
        }
    }

    /// Runs the attempt; what a failed one wrote is discarded.
    pub async fn run(mut self) -> (Result<AttemptOutcome, AttemptError>, AttemptReport) {
        let result = self.load().await;
        let pipeline = self.pipeline.name.clone();
        let outcome = if result.is_ok() { "succeeded" } else { "failed" };
        metrics::counter!(telemetry::JOBS, "pipeline" => pipeline.clone(), "outcome" => outcome).increment(1);
        metrics::counter!(telemetry::JOB_RECORDS, "pipeline" => pipeline)
            .increment(self.report.counts.records_read);
        (result, self.report)
    }

    async fn load(&mut self) -> Result<AttemptOutcome, AttemptError> {
        let job = self.job;
        let input = match (job.input, &self.pipeline.dead_letters) {
            (JobInput::Object, _) => ObjectStore::S3(self.pipeline.s3.bucket(&job.object.bucket)),
            (JobInput::DeadLetters, Some(target)) => target.store.clone(),
            (JobInput::DeadLetters, None) => return Err(AttemptError::NoDeadLetterStore),
        };
        let gone =
            || AttemptError::ObjectGone { bucket: job.object.bucket.clone(), key: job.object.key.clone() };
        let current = input.head(&job.object.key).await?.ok_or_else(gone)?;
        if current.etag != job.object.etag {
            return Err(AttemptError::ObjectChanged {
                bucket: job.object.bucket.clone(),
                key: job.object.key.clone(),
                requested: job.object.etag.clone(),
                found: current.etag,
            });
        }
        let body = input.open(&job.object.key).await?.ok_or_else(gone)?;
        if let Some(target) = &self.pipeline.dead_letters {
            let letters = JobDeadLetters::start(target.store.clone(), &target.prefix, job.id)
                .await
                .map_err(AttemptError::DeadLetters)?;
            self.pipeline
                .store
                .record_dead_letter_location(job.id, job.attempts, &letters.location())
                .await?;
            self.letters = Some(letters);
        }

        let attempt = LoadAttempt {
            job: job.id,
            attempt: job.attempts,
            loaded_at: job.started_at.unwrap_or_else(Utc::now),
        };
        let mut load = self.pipeline.sinks.begin(attempt).await?;
        let writers = load.writers();
        let streaming = std::time::Instant::now();
        let (streamed, driven) = tokio::join!(self.stream(body, writers), load.run());
        // The load's own error explains the sinks that found its connection gone.
        let written = match (streamed, driven) {
            (_, Err(error)) => Err(error.into()),
            (Err(error), _) => Err(error),
            (Ok(written), Ok(true)) => Ok(written),
            (Ok(_), Ok(false)) => Err(AttemptError::TaskLost("sink")),
        };
        let written = match written {
            Ok(written) => written,
            Err(error) => {
                load.discard().await;
                return Err(error);
            }
        };
        tracing::debug!(job = %job.id, elapsed = ?streaming.elapsed(), "object streamed into the load");
        let record = JobCommit { id: job.id, report: &self.report };
        Ok(match load.commit(written, &record).await? {
            Committed::Loaded => AttemptOutcome::Loaded,
            Committed::LoadedElsewhere => AttemptOutcome::LoadedElsewhere,
        })
    }

    /// Reads the object through the plugin chain into the sinks' writers; returns what each
    /// sink left for the commit, in the sinks' order.
    async fn stream(
        &mut self,
        body: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
        writers: Vec<Box<dyn LoadWriter>>,
    ) -> Result<Vec<Written>, AttemptError> {
        let job = self.job;
        let (compression, body) =
            decompressed(body).await.map_err(|source| ReadError::Io { offset: 0, source })?;
        if compression != Compression::None {
            tracing::info!(job = %job.id, compression = compression.name(), "reading a compressed input");
        }
        let mut senders = Vec::with_capacity(writers.len());
        let mut sink_tasks = Vec::with_capacity(writers.len());
        for writer in writers {
            let (sender, receiver) = mpsc::channel(CHANNEL_BATCHES);
            senders.push(sender);
            sink_tasks.push(tokio::spawn(writer.run(receiver, job.id.to_string())));
        }
        let (batch_sender, mut batches) = mpsc::channel(CHANNEL_BATCHES);
        let reader = RecordReader::new(body, self.pipeline.source.max_record_bytes);
        let reader_task =
            tokio::spawn(read_batches(reader, self.pipeline.source.batch_records, batch_sender));

        let mut sinks_open = true;
        let mut stopped = None;
        let mut reader_done = false;
        // Batches whose chain runs on a task of its own, oldest first: the next batch's plugin
        // calls run while this one's rows are routed, and results are taken in input order.
        let mut in_flight: VecDeque<ChainRun> = VecDeque::with_capacity(CHAINS_IN_FLIGHT);
        let mut records_started = 0;
        while sinks_open {
            while in_flight.len() < CHAINS_IN_FLIGHT && !reader_done {
                let Some(batch) = batches.recv().await else {
                    reader_done = true;
                    break;
                };
                let first_record = records_started;
                records_started += batch.records.len() as u64;
                in_flight.push_back(ChainRun::start(&self.pipeline.chain, job.input, batch, first_record));
            }
            let Some(run) = in_flight.pop_front() else { break };
            let mut output = run.task.await.map_err(|_| AttemptError::TaskLost("plugin"))?;
            output.settle_failures();
            self.report.counts.records_read += run.inputs.len() as u64;
            self.report.counts.bytes_read = run.bytes_read;
            if let Err(error) = self.keep_refused(&output, &run.inputs, &run.records).await {
                stopped = Some(error);
                break;
            }
            sinks_open = self.route(output, &run.inputs, &senders).await;
            self.progress.send_replace(self.report.counts.clone());
        }
        for run in in_flight {
            run.task.abort();
        }
        drop(batches);
        let read = reader_task.await.map_err(|_| AttemptError::TaskLost("reader"))?;
        if let Some(letters) = self.letters.take()
            && stopped.is_none()
        {
            match letters.finish().await {
                Ok(written) => self.report.counts.dead_letters = written,
                Err(error) => stopped = Some(AttemptError::DeadLetters(error)),
            }
        }
        if stopped.is_none()
            && let Ok(shape) = &read
        {
            stopped = self.refuse_if_mostly_dead_letters(*shape);
        }
        if sinks_open && read.is_ok() && stopped.is_none() {
            for sender in &senders {
                // A sink that stopped reports its own error below.
                let _ = sender.send(LoadMessage::Finish).await;
            }
        }
        drop(senders);
        let mut sink_error = None;
        let mut all_finished = true;
        let mut loads = Vec::with_capacity(sink_tasks.len());
        for task in sink_tasks {
            match task.await.map_err(|_| AttemptError::TaskLost("sink"))? {
                Ok(Some(load)) => loads.push(load),
                Ok(None) => all_finished = false,
                Err(error) => {
                    sink_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = stopped {
            return Err(error);
        }
        // A sink's own error explains a stop better than the reader's or a closed channel.
        if let Some(error) = sink_error {
            return Err(error.into());
        }
        read?;
        if !all_finished {
            return Err(AttemptError::TaskLost("sink"));
        }
        Ok(loads)
    }

    /// Sends each sink the rows of its output; false when a sink has stopped.
    async fn route(
        &mut self,
        mut output: ChainOutput,
        inputs: &[InputRecord],
        senders: &[mpsc::Sender<LoadMessage>],
    ) -> bool {
        for (sink, sender) in self.pipeline.sinks.targets().iter().zip(senders) {
            let emitted = if sink.last_reader {
                output.outputs.remove(&sink.output).unwrap_or_default()
            } else {
                output.outputs.get(&sink.output).cloned().unwrap_or_default()
            };
            *self.report.counts.rows.entry(sink.name.clone()).or_default() += emitted.len() as u64;
            let rows = emitted
                .into_iter()
                .map(|row| LoadRow {
                    record: inputs.get(row.source_index).map_or(0, |input| signed(input.number)),
                    row: row.row,
                    plugin_version: row.plugin_version,
                })
                .collect();
            if sender.send(LoadMessage::Rows(rows)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Counts the batch's refused records, keeps a few as samples on the job, and writes each
    /// refusal as a dead letter whose reason starts with where the record was read.
    async fn keep_refused(
        &mut self,
        output: &ChainOutput,
        inputs: &[InputRecord],
        records: &[RecordIn],
    ) -> Result<(), AttemptError> {
        let mut failed: Vec<usize> = output.failures.iter().map(|failure| failure.source_index).collect();
        failed.sort_unstable();
        failed.dedup();
        self.report.counts.records_failed += failed.len() as u64;
        for failure in &output.failures {
            let (Some(input), Some(record)) =
                (inputs.get(failure.source_index), records.get(failure.source_index))
            else {
                continue;
            };
            let reason = format!("{}: {}", input.position(), failure.reason);
            if self.report.failures.len() < FAILURE_SAMPLES {
                self.report.failures.push(FailureSample {
                    record: input.number,
                    step: failure.step.clone(),
                    reason: reason.clone(),
                });
            }
            let Some(letters) = self.letters.as_mut() else {
                return Err(AttemptError::NowhereToKeep { record: input.number });
            };
            let place = RecordPlace { number: input.number, offset: input.offset };
            letters
                .add(&job_dead_letter(
                    self.job.id,
                    &self.job.object,
                    place,
                    &record.value,
                    failure,
                    reason.clone(),
                ))
                .await
                .map_err(AttemptError::DeadLetters)?;
            self.report.counts.dead_letters = letters.count();
            self.first_dead_letter.get_or_insert(reason);
        }
        if !output.failures.is_empty() {
            metrics::counter!(telemetry::DEAD_LETTERS, "pipeline" => self.pipeline.name.clone())
                .increment(output.failures.len() as u64);
        }
        Ok(())
    }

    /// The error that fails a user's file whose dead letters pass the pipeline's limit, so a
    /// file nobody could read is not reported as loaded. A sweep of dead letters is exempt:
    /// letters that fail again are kept again, whatever their share.
    fn refuse_if_mostly_dead_letters(&mut self, shape: Option<Shape>) -> Option<AttemptError> {
        let counts = &self.report.counts;
        let source = &self.pipeline.source;
        if self.job.input != JobInput::Object
            || !source.too_many_dead_letters(counts.records_read, counts.dead_letters)
        {
            return None;
        }
        let limit = match source.max_dead_letter_ratio {
            Some(ratio) => format!("more than the share of {ratio} that `max_dead_letter_ratio` allows"),
            None => "all of them; `max_dead_letter_ratio` sets the share a job may have".to_owned(),
        };
        Some(AttemptError::TooManyDeadLetters {
            records: counts.records_read,
            dead_letters: counts.dead_letters,
            limit,
            shape: shape.map_or_else(|| "nothing".to_owned(), |shape| shape.to_string()),
            first: self.first_dead_letter.take().unwrap_or_default(),
        })
    }
}

/// The job's record, claimed and marked loaded by the load's commit.
struct JobCommit<'a> {
    id: Uuid,
    report: &'a AttemptReport,
}

impl CommitRecord for JobCommit<'_> {
    fn claim<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<bool, LoadFailure>> {
        Box::pin(async move {
            let state = lock_for_commit(client, self.id).await.map_err(LoadFailure::new)?;
            Ok(state != Some(JobState::Succeeded))
        })
    }

    fn record<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<(), LoadFailure>> {
        Box::pin(async move {
            record_success(client, self.id, &self.report.counts, &self.report.failures)
                .await
                .map_err(LoadFailure::new)
        })
    }
}

/// A record number as a sink's `bigint` holds it.
fn signed(number: u64) -> i64 {
    i64::try_from(number).unwrap_or(i64::MAX)
}
