//! An `s3-job` pipeline made ready to run: its plugin chain, its tables resolved against the
//! database, and the stores its jobs use.

use std::sync::Arc;

use tokio::sync::watch;
use uuid::Uuid;

use super::records::{JobCounts, JobInput, JobRecord, JobRecords, JobRecordsError, JobState, Submission};
use super::request::{JobRequest, RequestError};
use super::runner::{Attempt, AttemptOutcome};
use crate::config::{HostConfig, Pipeline, SourceConfig};
use crate::database::{Database, DatabaseError};
use crate::object_store::{LocationError, ObjectStores};
use crate::object_store::{ObjectStore, S3Client};
use crate::pipeline::Chain;
use crate::plugin::{PluginError, PluginRegistry};
use crate::sink::transactional::{LoadContext, TransactionalSinkError, TransactionalSinks};
use crate::source::s3_job::S3JobSource;

/// How often a running job's counts are written to its record.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Why a pipeline cannot run jobs.
#[derive(Debug, thiserror::Error)]
pub enum JobSetupError {
    #[error("pipeline `{0}` does not have an `s3-job` source")]
    NotAJobPipeline(String),
    #[error("pipeline `{pipeline}`: {source}")]
    Plugin { pipeline: String, source: PluginError },
    #[error("pipeline `{pipeline}`: {source}")]
    Sinks { pipeline: String, source: TransactionalSinkError },
    #[error("pipeline `{pipeline}`: dead letters: {source}")]
    DeadLetters {
        pipeline: String,
        #[source]
        source: LocationError,
    },
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

/// What happened to a job the caller asked to run.
#[derive(Debug, Clone)]
pub enum RunOutcome {
    /// This attempt loaded the file.
    Succeeded(JobRecord),
    /// An earlier attempt (or another host) had loaded it; nothing was done.
    AlreadyLoaded(JobRecord),
    /// This attempt failed and loaded nothing; the record holds the error.
    Failed(JobRecord),
    /// No job has that id.
    Unknown(Uuid),
}

/// Where a pipeline's jobs keep the records their plugins refuse.
pub(super) struct DeadLetterTarget {
    pub store: ObjectStore,
    pub prefix: String,
}

/// An `s3-job` pipeline ready to accept and run jobs.
pub struct JobPipeline {
    pub(super) name: String,
    pub(super) source: S3JobSource,
    pub(super) chain: Chain,
    pub(super) sinks: Box<dyn TransactionalSinks>,
    pub(super) dead_letters: Option<DeadLetterTarget>,
    pub(super) store: Arc<JobRecords>,
    pub(super) s3: S3Client,
}

impl JobPipeline {
    /// Resolves the pipeline's steps and tables: applies the pipeline's `tables_sql` (once per
    /// version of the file), then every field of every loaded output must have a column, so a
    /// table that lacks one stops the start rather than the first load.
    ///
    /// # Errors
    /// [`JobSetupError`] naming the pipeline and what does not fit.
    pub async fn prepare(
        pipeline: &Pipeline,
        registry: &PluginRegistry,
        host: &HostConfig,
        database: Database,
        store: Arc<JobRecords>,
        s3: S3Client,
        stores: &ObjectStores,
    ) -> Result<Self, JobSetupError> {
        let name = pipeline.name.clone();
        let SourceConfig::S3Job(source) = &pipeline.source else {
            return Err(JobSetupError::NotAJobPipeline(name));
        };
        let source = S3JobSource {
            batch_records: source.batch_records.max(1),
            job_partitions: source.job_partitions.max(1),
            ..source.clone()
        };
        let chain = Chain::new(pipeline, registry, host)
            .map_err(|source| JobSetupError::Plugin { pipeline: name.clone(), source })?;
        let context = LoadContext { pipeline, registry, database: &database };
        let sinks = crate::sink::transactional(&context)
            .await
            .map_err(|source| JobSetupError::Sinks { pipeline: name.clone(), source })?;
        let dead_letters = match &pipeline.dead_letters {
            None => None,
            Some(config) => {
                let location = config.location();
                let store = stores
                    .store(&location)
                    .await
                    .map_err(|source| JobSetupError::DeadLetters { pipeline: name.clone(), source })?;
                Some(DeadLetterTarget { store, prefix: location.prefix().to_owned() })
            }
        };
        Ok(JobPipeline { name, source, chain, sinks, dead_letters, store, s3 })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn source(&self) -> &S3JobSource {
        &self.source
    }

    pub fn store(&self) -> &Arc<JobRecords> {
        &self.store
    }

    /// Checks `request` against S3 and returns the job for that object version, creating it
    /// `queued` when there is none. Queueing it for a host is the caller's part.
    ///
    /// # Errors
    /// [`SubmitError::Request`] when the request is refused, [`SubmitError::Store`] when the
    /// job store fails.
    pub async fn submit(&self, request: &JobRequest) -> Result<Submission, SubmitError> {
        let object = request.resolve(&self.s3).await?;
        Ok(self.store.create_or_get(&self.name, &object, JobInput::Object).await?)
    }

    /// Runs job `id` now, unless it has already been loaded. Progress goes to `progress` as
    /// it happens and to the job record every half second.
    ///
    /// # Errors
    /// [`JobRecordsError`] only when the job store cannot be read or the outcome cannot be
    /// recorded; a failed load is [`RunOutcome::Failed`].
    pub async fn run(
        &self,
        id: Uuid,
        progress: &watch::Sender<JobCounts>,
    ) -> Result<RunOutcome, JobRecordsError> {
        let Some(job) = self.store.claim(id).await? else {
            return Ok(match self.store.get(id).await? {
                Some(job) if job.state == JobState::Succeeded => RunOutcome::AlreadyLoaded(job),
                Some(job) => RunOutcome::Failed(job),
                None => RunOutcome::Unknown(id),
            });
        };
        tracing::info!(pipeline = %self.name, job = %id, attempt = job.attempts, bucket = %job.object.bucket, key = %job.object.key, "job started");
        let recorder = self.record_progress_while_running(&job, progress.subscribe());
        let attempt = Attempt::new(self, &job, progress);
        let (outcome, report) = tokio::select! {
            result = attempt.run() => result,
            never = recorder => match never {},
        };
        let finished = match outcome {
            Ok(AttemptOutcome::Loaded) => {
                tracing::info!(pipeline = %self.name, job = %id, records = report.counts.records_read, "job succeeded");
                self.store.get(id).await?.map_or(RunOutcome::Unknown(id), RunOutcome::Succeeded)
            }
            Ok(AttemptOutcome::LoadedElsewhere) => {
                tracing::info!(pipeline = %self.name, job = %id, "job was loaded by another attempt meanwhile");
                self.store.get(id).await?.map_or(RunOutcome::Unknown(id), RunOutcome::AlreadyLoaded)
            }
            Err(error) => {
                let message = error.to_string();
                tracing::warn!(pipeline = %self.name, job = %id, attempt = job.attempts, "job failed: {message}");
                self.store
                    .record_failure(id, job.attempts, &report.counts, &report.failures, &message)
                    .await?;
                self.store.get(id).await?.map_or(RunOutcome::Unknown(id), RunOutcome::Failed)
            }
        };
        Ok(finished)
    }

    /// Writes the counts of `job`'s running attempt to its record until dropped.
    async fn record_progress_while_running(
        &self,
        job: &JobRecord,
        mut progress: watch::Receiver<JobCounts>,
    ) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(PROGRESS_INTERVAL).await;
            if !progress.has_changed().unwrap_or(false) {
                continue;
            }
            let counts = progress.borrow_and_update().clone();
            if let Err(error) = self.store.record_progress(job.id, job.attempts, &counts).await {
                tracing::warn!(job = %job.id, "cannot record job progress: {error}");
            }
        }
    }
}

/// Why a job could not be submitted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Store(#[from] JobRecordsError),
}
