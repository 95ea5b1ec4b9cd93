//! ETL jobs: a request names an S3 object, a host of the pipeline's consumer group streams it
//! through the plugin chain, and the rows land in PostgreSQL in one transaction.
//!
//! The data path, one module each: [`request`] (is the object there, exactly once?) →
//! [`store`] (the job record, unique per object version, shared by all hosts) → [`queue`]
//! (the Kafka job topic a consumer group works through) → [`runner`] (one attempt: [`reader`]
//! splits the object into records, the chain transforms them, the postgres sink stages and
//! moves them, and [`dead_letters`] keeps the records the plugins refused; [`sweep`] runs
//! them again later). [`JobPipeline`] ties them together for the HTTP endpoint, the queue
//! worker, `sluice job run` and `sluice sweep`.
//!
//! States: `queued` → `running` → `succeeded` | `failed`. A host that dies mid-job never
//! committed the job's Kafka offset, so the group hands the job out again and the next attempt
//! starts over (the previous attempt's staging tables are dropped). Requesting a failed job's
//! object again re-queues it, and so does requesting one still queued after a while (its host
//! may have stopped before queueing it); requesting a running or succeeded one returns it.

pub mod dead_letters;
mod pipeline;
pub mod queue;
pub mod reader;
pub mod records;
pub mod request;
mod runner;
mod services;
mod sweep;

pub use pipeline::{JobPipeline, JobSetupError, RunOutcome, SubmitError};
pub use queue::{JobQueue, QueueError};
pub use records::{
    JobCounts, JobInput, JobRecord, JobRecords, JobRecordsError, JobState, ObjectVersion, Submission,
};
pub use request::{JobRequest, RequestError};
pub use services::{
    JobServices, JobStartError, ServedJobPipeline, ServedJobs, is_job_pipeline, serve_job_pipelines,
};
pub use sweep::JobSweepError;
