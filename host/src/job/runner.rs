//! One attempt at a job: stream the object through the plugin chain into the load's
//! transaction, then commit it.
//!
//! The transaction is opened first, on the attempt's control connection. Every sink whose rows
//! replace nothing (an append, or an upsert into a table that holds no rows, see
//! `TablePlan::try_lock_replace`) copies them straight into its table inside that transaction,
//! through `SharedCopies` (one connection runs one `COPY` at a time), so they are written once.
//! Every other sink streams into an unlogged staging table on a connection of its own, and so
//! does an upsert copied straight in from its first key that may repeat; the staged rows are
//! moved into their tables by the same transaction once the object is read, replacing the
//! rows of the keys they bring.
//!
//! Reading, plugin calls and `COPY` overlap: a reader task splits the object into batches, this
//! task runs the chain, and one task per sink streams its rows. The channels between them hold
//! two batches each, so memory is bounded by the batch size whatever the object's size.
//! Nothing is visible in the real tables before the transaction commits, which also marks the
//! job succeeded; a crash at any point leaves the tables as they were.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio_postgres::{Client, Transaction};

use super::dead_letters::{JobDeadLetters, RecordPlace, job_dead_letter};
use super::pipeline::{JobPipeline, JobSink};
use super::reader::{ReadError, ReadRecord, RecordReader, Shape};
use super::records::{
    FailureSample, JobCounts, JobInput, JobRecord, JobRecordsError, JobState, lock_for_commit, record_success,
};
use crate::object_store::{ObjectStore, StoreError};
use crate::pipeline::{Chain, ChainOutput};
use crate::plugin::RecordIn;
use crate::sink::dead_letter::{DeadLetter, Origin};
use crate::sink::postgres::{
    Copied, CopyWriter, Database, DatabaseError, LoadError, RowOrigin, SharedCopies, TablePlan,
    drop_staging_tables, staging_table_name,
};
use crate::telemetry;

/// How many refused records a job keeps as examples.
const FAILURE_SAMPLES: usize = 20;
/// Sort memory of the transaction that moves staged rows into the tables.
const MOVE_WORK_MEM: &str = "256MB";
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
    Load(#[from] LoadError),
    #[error(transparent)]
    Database(#[from] DatabaseError),
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

/// A batch of records as read, with how far into the object it ends.
struct ReadBatch {
    records: Vec<ReadRecord>,
    bytes_read: u64,
}

/// Where one record of the input was first read: its place in that file.
struct InputRecord {
    /// Its position in that file, from 1.
    number: u64,
    /// Where it starts in that file, in bytes; unknown for letters written before offsets were.
    offset: Option<u64>,
}

impl InputRecord {
    /// The `index`-th record of a batch whose first record is `first_record + 1`, and its
    /// bytes: for a user's file the record as read; for a dead-letter object, the refused
    /// record a letter holds.
    fn of(input: JobInput, read: ReadRecord, first_record: u64, index: usize) -> (Self, Vec<u8>) {
        let number = first_record + index as u64 + 1;
        let as_read = |read: ReadRecord| (InputRecord { number, offset: Some(read.offset) }, read.bytes);
        match input {
            JobInput::Object => as_read(read),
            JobInput::DeadLetters => match DeadLetter::parse_line(&read.bytes) {
                Some(DeadLetter { origin: Origin::JobFile(at), value, .. }) => (
                    InputRecord { number: at.record, offset: at.byte_offset },
                    value.to_bytes().unwrap_or_else(|| read.bytes.clone()),
                ),
                _ => as_read(read),
            },
        }
    }

    /// `record N at byte B`, for reasons.
    fn position(&self) -> String {
        match self.offset {
            Some(offset) => format!("record {} at byte {offset}", self.number),
            None => format!("record {}", self.number),
        }
    }
}

/// One batch whose plugin chain runs on a task of its own.
struct ChainRun {
    task: tokio::task::JoinHandle<ChainOutput>,
    /// Where the records were read, for the rows' numbers and the dead letters.
    inputs: Vec<InputRecord>,
    /// The records, shared with the chain: a refused one becomes a dead letter.
    records: Arc<[RecordIn]>,
    bytes_read: u64,
}

impl ChainRun {
    fn start(chain: &Chain, input: JobInput, batch: ReadBatch, first_record: u64) -> Self {
        let (inputs, records): (Vec<InputRecord>, Vec<RecordIn>) = batch
            .records
            .into_iter()
            .enumerate()
            .map(|(index, read)| {
                let (place, value) = InputRecord::of(input, read, first_record, index);
                (place, RecordIn { key: None, value, headers: Vec::new() })
            })
            .unzip();
        let records: Arc<[RecordIn]> = records.into();
        let chain = chain.clone();
        let shared = records.clone();
        let task = tokio::spawn(async move { chain.run(shared).await });
        ChainRun { task, inputs, records, bytes_read: batch.bytes_read }
    }
}

/// What a sink task receives: rows, then the word to commit its `COPY`. A channel closed
/// without [`SinkMessage::Finish`] aborts it.
enum SinkMessage {
    Rows(Vec<SinkRow>),
    Finish,
}

/// One plugin output value bound for a sink.
struct SinkRow {
    /// The input record it came from, from 1.
    record: i64,
    row: crate::plugin::rows::RowRef,
    /// `name@version` of the plugin that made it, for a `plugin_version` column.
    plugin_version: std::sync::Arc<str>,
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

    /// Runs the attempt; staging tables are dropped whatever the outcome.
    pub async fn run(mut self) -> (Result<AttemptOutcome, AttemptError>, AttemptReport) {
        let result = match self.pipeline.database.connect().await {
            Ok(mut control) => {
                let result = self.load(&mut control).await;
                if result.is_err()
                    && let Err(error) = drop_staging_tables(&control, &self.job.id, None).await
                {
                    tracing::warn!(job = %self.job.id, "staging tables left behind: {error}");
                }
                result
            }
            Err(error) => Err(error.into()),
        };
        let pipeline = self.pipeline.name.clone();
        let outcome = if result.is_ok() { "succeeded" } else { "failed" };
        metrics::counter!(telemetry::JOBS, "pipeline" => pipeline.clone(), "outcome" => outcome).increment(1);
        metrics::counter!(telemetry::JOB_RECORDS, "pipeline" => pipeline)
            .increment(self.report.counts.records_read);
        (result, self.report)
    }

    async fn load(&mut self, control: &mut Client) -> Result<AttemptOutcome, AttemptError> {
        let job = self.job;
        // `timestamp` columns get the load time as UTC wall time.
        control
            .batch_execute("SET TIME ZONE 'UTC'")
            .await
            .map_err(DatabaseError::query("setting the time zone"))?;
        let dropped = drop_staging_tables(control, &job.id, None).await?;
        if dropped > 0 {
            tracing::info!(job = %job.id, dropped, "dropped the staging tables of an earlier attempt");
        }
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

        let loaded_at = job.started_at.unwrap_or_else(Utc::now);
        let transaction =
            control.transaction().await.map_err(DatabaseError::query("starting the load transaction"))?;
        // The upsert's DISTINCT ON sorts the whole staged output; with the default 4 MB it
        // spills to disk. Local to this transaction.
        transaction
            .batch_execute(&format!("SET LOCAL work_mem = '{MOVE_WORK_MEM}'"))
            .await
            .map_err(DatabaseError::query("sizing the load's sort memory"))?;
        // Rows go straight into their tables through this transaction's connection when nothing
        // needs replacing: appends, and upserts into tables that hold no rows. The rest are
        // staged on connections of their own and moved at the commit.
        let mut shared = SharedCopies::new();
        let mut writers = Vec::with_capacity(self.pipeline.sinks.len());
        // Replace locks are taken in the sinks' order; after one is missed, none is tried, so
        // the ones held are always the first ones, which keeps the commit's order.
        let mut locking = true;
        for (index, sink) in self.pipeline.sinks.iter().enumerate() {
            let stage = staging_table_name(&job.id, job.attempts, index);
            let mut straight_in = !sink.plan.is_upsert();
            if sink.plan.is_upsert() && locking && sink.plan.copies_into_empty_table() {
                locking = sink.plan.try_lock_replace(&transaction).await?;
                straight_in = locking && !sink.plan.holds_rows(&transaction).await?;
            }
            let opened = if straight_in {
                shared
                    .add(&sink.plan)
                    .and_then(|segments| CopyWriter::open_shared(sink.plan.clone(), loaded_at, segments))
            } else {
                None
            };
            let writer = match opened {
                Some(writer) => SinkWriter::straight_in(writer, sink, &self.pipeline.database, stage),
                None => SinkWriter::staged(
                    CopyWriter::open(&self.pipeline.database, sink.plan.clone(), &stage).await?,
                    stage,
                ),
            };
            writers.push(writer);
        }
        let streaming = std::time::Instant::now();
        let (streamed, copied_in) = tokio::join!(self.stream(body, writers), shared.run(&transaction));
        // The connection's own error explains the sinks that found it gone.
        let loads = match (streamed, copied_in) {
            (_, Err(error)) => return Err(error.into()),
            (Err(error), _) => return Err(error),
            (Ok(loads), Ok(true)) => loads,
            (Ok(_), Ok(false)) => return Err(AttemptError::TaskLost("sink")),
        };
        tracing::debug!(job = %job.id, elapsed = ?streaming.elapsed(), "object streamed into the load");
        let outcome = self.commit(transaction, &loads, loaded_at).await?;
        if outcome == AttemptOutcome::LoadedElsewhere {
            drop_staging_tables(control, &job.id, None).await?;
        }
        Ok(outcome)
    }

    /// Reads the object through the plugin chain into the sinks' writers; returns what each
    /// sink left to move at the commit, in the sinks' order.
    async fn stream(
        &mut self,
        body: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
        writers: Vec<SinkWriter>,
    ) -> Result<Vec<SinkLoad>, AttemptError> {
        let job = self.job;
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
                let _ = sender.send(SinkMessage::Finish).await;
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
        senders: &[mpsc::Sender<SinkMessage>],
    ) -> bool {
        for (sink, sender) in self.pipeline.sinks.iter().zip(senders) {
            let emitted = if sink.last_reader {
                output.outputs.remove(&sink.output).unwrap_or_default()
            } else {
                output.outputs.get(&sink.output).cloned().unwrap_or_default()
            };
            *self.report.counts.rows.entry(sink.plan.table.clone()).or_default() += emitted.len() as u64;
            let rows = emitted
                .into_iter()
                .map(|row| SinkRow {
                    record: inputs.get(row.source_index).map_or(0, |input| signed(input.number)),
                    row: row.row,
                    plugin_version: row.plugin_version,
                })
                .collect();
            if sender.send(SinkMessage::Rows(rows)).await.is_err() {
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

    /// Moves every staging table into its table and marks the job succeeded, then commits the
    /// load's transaction; the job row is locked first so two attempts cannot both load (the
    /// loser's transaction, with the rows it copied in place, is rolled back).
    async fn commit(
        &self,
        transaction: Transaction<'_>,
        loads: &[SinkLoad],
        loaded_at: DateTime<Utc>,
    ) -> Result<AttemptOutcome, AttemptError> {
        let job = self.job;
        // Before the job's row, as every load takes them.
        for sink in self.pipeline.sinks.iter().filter(|sink| sink.plan.is_upsert()) {
            sink.plan.lock_replace(&transaction).await?;
        }
        if lock_for_commit(&transaction, job.id).await? == Some(JobState::Succeeded) {
            transaction.rollback().await.map_err(DatabaseError::query("rolling back"))?;
            return Ok(AttemptOutcome::LoadedElsewhere);
        }
        for (sink, load) in self.pipeline.sinks.iter().zip(loads) {
            let Some((stage, copied)) = &load.staged else { continue };
            let started = std::time::Instant::now();
            let keys_unique = copied.keys_unique;
            let moved = sink.plan.move_staged(&transaction, stage, keys_unique, loaded_at).await?;
            tracing::debug!(job = %job.id, table = %sink.plan.table, moved, keys_unique, copied_in = load.copied_in, elapsed = ?started.elapsed(), "rows moved");
        }
        record_success(&transaction, job.id, &self.report.counts, &self.report.failures).await?;
        for (stage, _) in loads.iter().filter_map(|load| load.staged.as_ref()) {
            transaction
                .batch_execute(&format!("DROP TABLE {}", crate::sink::postgres::quote_identifier(stage)))
                .await
                .map_err(DatabaseError::query(format!("dropping staging table {stage}")))?;
        }
        transaction.commit().await.map_err(DatabaseError::query("committing the load"))?;
        Ok(AttemptOutcome::Loaded)
    }
}

/// A sink's writers for one attempt: its rows straight into the table, through the load's
/// connection, or into its staging table; an upsert copied straight in goes on in its staging
/// table from the first row whose key may repeat an earlier one, so the move at the commit
/// keeps the last row per key, replacing the rows copied in before.
struct SinkWriter {
    /// The writer the sink starts with: into the table, or into the staging table.
    first: CopyWriter,
    /// The staging table's name: where `first` copies, or where rows go on after a repeat.
    stage: String,
    /// For an upsert copied straight in: how to open the staging table, and once opened, it.
    fallback: Option<Fallback>,
}

/// The staging table an upsert copied straight in opens at its first repeated key.
struct Fallback {
    database: Database,
    plan: Arc<TablePlan>,
    staged: Option<CopyWriter>,
}

/// What a sink leaves for the commit.
struct SinkLoad {
    /// Rows copied straight into the table.
    copied_in: u64,
    /// The staging table to move, and what was staged in it.
    staged: Option<(String, Copied)>,
}

impl SinkWriter {
    fn staged(writer: CopyWriter, stage: String) -> Self {
        SinkWriter { first: writer, stage, fallback: None }
    }

    fn straight_in(writer: CopyWriter, sink: &JobSink, database: &Database, stage: String) -> Self {
        let fallback = sink.plan.is_upsert().then(|| Fallback {
            database: database.clone(),
            plan: sink.plan.clone(),
            staged: None,
        });
        SinkWriter { first: writer, stage, fallback }
    }

    /// Writes the rows it receives; `Ok(None)` when the attempt was abandoned (the `COPY`s are
    /// aborted by dropping them).
    async fn run(
        mut self,
        mut messages: mpsc::Receiver<SinkMessage>,
        job_id: String,
    ) -> Result<Option<SinkLoad>, LoadError> {
        while let Some(message) = messages.recv().await {
            match message {
                SinkMessage::Rows(rows) => {
                    for row in rows {
                        let origin = RowOrigin { plugin_version: &row.plugin_version, job_id: &job_id };
                        self.write(row.record, &row.row, origin).await?;
                    }
                }
                SinkMessage::Finish => return self.finish().await.map(Some),
            }
        }
        Ok(None)
    }

    async fn write(
        &mut self,
        record: i64,
        row: &crate::plugin::rows::RowRef,
        origin: RowOrigin<'_>,
    ) -> Result<(), LoadError> {
        if let Some(staged) = self.fallback.as_mut().and_then(|fallback| fallback.staged.as_mut()) {
            return staged.write(record, row, origin).await;
        }
        if self.first.write_new_key(record, row, origin).await? {
            return Ok(());
        }
        // Only an upsert copied straight in refuses a row, and it has a fallback.
        let Some(fallback) = self.fallback.as_mut() else {
            return Err(LoadError::SharedCopyStopped { table: self.first.plan().table.clone() });
        };
        let mut staged = CopyWriter::open(&fallback.database, fallback.plan.clone(), &self.stage).await?;
        staged.write(record, row, origin).await?;
        fallback.staged = Some(staged);
        Ok(())
    }

    async fn finish(self) -> Result<SinkLoad, LoadError> {
        let staged_first = self.first.is_staged();
        let first = self.first.finish().await?;
        if staged_first {
            return Ok(SinkLoad { copied_in: 0, staged: Some((self.stage, first)) });
        }
        let staged = match self.fallback.and_then(|fallback| fallback.staged) {
            Some(writer) => Some((self.stage, writer.finish().await?)),
            None => None,
        };
        Ok(SinkLoad { copied_in: first.rows, staged })
    }
}

/// A record number as the staging tables' `bigint` holds it.
fn signed(number: u64) -> i64 {
    i64::try_from(number).unwrap_or(i64::MAX)
}

/// Reads the object batch by batch until it ends or the receiver goes away; returns the
/// shape the reader found.
async fn read_batches<R: tokio::io::AsyncRead + Unpin>(
    mut reader: RecordReader<R>,
    batch_records: usize,
    batches: mpsc::Sender<ReadBatch>,
) -> Result<Option<Shape>, ReadError> {
    loop {
        let records = reader.next_batch(batch_records).await?;
        if records.is_empty() {
            return Ok(reader.shape());
        }
        if batches.send(ReadBatch { records, bytes_read: reader.bytes_read() }).await.is_err() {
            return Ok(reader.shape());
        }
    }
}
