//! What a host needs before its job pipelines can run: a migrated database, the job store and
//! S3. Shared by `sluice serve` and `sluice job run`.

use std::sync::Arc;

use tokio::sync::watch;

use super::pipeline::{JobPipeline, JobSetupError};
use super::queue::{JobQueue, QueueError, run_worker};
use super::records::JobRecords;
use crate::config::{HostConfig, Pipeline, SourceConfig};
use crate::database::{Database, MigrationError, migrate};
use crate::object_store::ObjectStores;
use crate::object_store::S3Client;
use crate::plugin::PluginRegistry;

/// Why the job pipelines cannot start.
#[derive(Debug, thiserror::Error)]
pub enum JobStartError {
    #[error(transparent)]
    Setup(#[from] JobSetupError),
    #[error("cannot migrate the database: {0}")]
    Migration(#[from] MigrationError),
    #[error("pipeline `{pipeline}`: {source}")]
    Queue { pipeline: String, source: QueueError },
}

/// The database, job store and S3 client every job pipeline of a host shares.
pub struct JobServices<'a> {
    pub database: Database,
    pub store: Arc<JobRecords>,
    pub s3: S3Client,
    /// The host's one resolver of storage locations (dead letters), whose S3 client is `s3`.
    stores: &'a ObjectStores,
}

impl<'a> JobServices<'a> {
    /// Connects to the database named by `postgres.url_env`, applies the migrations, and
    /// takes the host's S3 client from `stores`.
    ///
    /// # Errors
    /// [`JobStartError`] when the URL is missing, the database is unreachable or a migration
    /// fails.
    pub async fn start(host: &HostConfig, stores: &'a ObjectStores) -> Result<Self, JobStartError> {
        let database = crate::database::Database::from_env(&host.postgres).map_err(JobSetupError::from)?;
        let mut client = database.connect().await.map_err(JobSetupError::from)?;
        let applied = migrate(&mut client).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "database migrations applied");
        }
        let store = Arc::new(JobRecords::new(database.clone()));
        let s3 = stores.s3().await.clone();
        Ok(JobServices { database, store, s3, stores })
    }

    /// Prepares `pipeline` to run jobs with these services.
    ///
    /// # Errors
    /// [`JobSetupError`] when its steps or tables do not fit.
    pub async fn prepare(
        &self,
        pipeline: &Pipeline,
        registry: &PluginRegistry,
        host: &HostConfig,
    ) -> Result<JobPipeline, JobSetupError> {
        JobPipeline::prepare(
            pipeline,
            registry,
            host,
            self.database.clone(),
            self.store.clone(),
            self.s3.clone(),
            self.stores,
        )
        .await
    }
}

/// A job pipeline a host serves: where to ask for jobs, and the queue they go on.
pub struct ServedJobPipeline {
    pub path: String,
    pub pipeline: Arc<JobPipeline>,
    pub queue: JobQueue,
}

/// The job pipelines of a host, with their workers running until `stop` turns true.
pub struct ServedJobs {
    pub store: Arc<JobRecords>,
    pub pipelines: Vec<ServedJobPipeline>,
}

/// Whether `pipeline` runs jobs.
pub fn is_job_pipeline(pipeline: &Pipeline) -> bool {
    matches!(pipeline.source, SourceConfig::S3Job(_))
}

/// Starts every `s3-job` pipeline in `pipelines`: migrations, job topics (created if
/// missing), and one worker per pipeline in its consumer group. `None` when there is none, so
/// a host without jobs needs no database.
///
/// # Errors
/// [`JobStartError`] when the database, a table, a plugin output or Kafka does not fit.
pub async fn serve_job_pipelines(
    pipelines: &[Pipeline],
    registry: &PluginRegistry,
    host: &HostConfig,
    stores: &ObjectStores,
    stop: &watch::Receiver<bool>,
) -> Result<Option<ServedJobs>, JobStartError> {
    let job_pipelines: Vec<&Pipeline> = pipelines.iter().filter(|p| is_job_pipeline(p)).collect();
    if job_pipelines.is_empty() {
        return Ok(None);
    }
    let services = JobServices::start(host, stores).await?;
    let mut served = Vec::with_capacity(job_pipelines.len());
    for pipeline in job_pipelines {
        let prepared = Arc::new(services.prepare(pipeline, registry, host).await?);
        let source = prepared.source().clone();
        let queue_error = |source| JobStartError::Queue { pipeline: pipeline.name.clone(), source };
        JobQueue::ensure_topic(&host.kafka, &source.job_topic, source.job_partitions)
            .await
            .map_err(queue_error)?;
        let queue = JobQueue::new(&host.kafka, &source.job_topic).map_err(queue_error)?;
        tokio::spawn(run_worker(prepared.clone(), host.kafka.clone(), stop.clone()));
        served.push(ServedJobPipeline { path: source.path, pipeline: prepared, queue });
    }
    Ok(Some(ServedJobs { store: services.store, pipelines: served }))
}
