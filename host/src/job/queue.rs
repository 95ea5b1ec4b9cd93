//! The Kafka job topic: accepted jobs are produced to it, and every host of the pipeline's
//! consumer group takes jobs from it one at a time, so more hosts run more jobs at once.
//!
//! A job's offset is committed only once its outcome is recorded. A host that dies mid-job
//! leaves it uncommitted, and the group hands the job to the next owner of the partition.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use super::pipeline::{JobPipeline, RunOutcome};
use super::records::JobRecord;
use crate::config::KafkaConfig;
use crate::kafka::{ConsumeError, DurableProducer, GroupConsumer, ProduceError, SourceRecord};

/// How long a job message may wait for the broker's acknowledgement.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the worker waits for a job before checking again.
const POLL_WAIT: Duration = Duration::from_secs(1);
/// The pause before the worker rejoins the group after a failure it cannot record.
const RETRY_PAUSE: Duration = Duration::from_secs(2);
/// Jobs run for minutes; the group must not take a partition away from a member for not
/// polling while it loads one (librdkafka's maximum).
const MAX_POLL_INTERVAL_MS: &str = "86400000";

/// Why the job topic cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot create the job topic `{topic}`: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error(transparent)]
    Produce(#[from] ProduceError),
    #[error(transparent)]
    Consume(#[from] ConsumeError),
}

/// What a job message carries.
#[derive(Debug, Serialize, Deserialize)]
struct JobMessage {
    job_id: Uuid,
    pipeline: String,
}

/// Producing jobs to a pipeline's job topic.
#[derive(Clone)]
pub struct JobQueue {
    producer: DurableProducer,
    topic: String,
}

impl JobQueue {
    /// A queue on `topic`.
    ///
    /// # Errors
    /// [`QueueError::Produce`] when librdkafka rejects the configuration.
    pub fn new(kafka: &KafkaConfig, topic: &str) -> Result<Self, QueueError> {
        Ok(JobQueue { producer: DurableProducer::new(kafka, DELIVERY_TIMEOUT)?, topic: topic.to_owned() })
    }

    /// Creates `topic` with `partitions` partitions unless it exists: the partitions bound
    /// how many hosts can run jobs at once.
    ///
    /// # Errors
    /// [`QueueError`] when the broker cannot be reached or refuses the topic.
    pub async fn ensure_topic(kafka: &KafkaConfig, topic: &str, partitions: i32) -> Result<(), QueueError> {
        crate::kafka::ensure_topic(kafka, topic, partitions)
            .await
            .map_err(|error| QueueError::CreateTopic { topic: topic.to_owned(), reason: error.to_string() })
    }

    /// Puts `job` on the topic, keyed by its id, and waits for the broker to store it.
    ///
    /// # Errors
    /// [`QueueError::Produce`] when the broker did not confirm in time.
    pub async fn enqueue(&self, job: &JobRecord) -> Result<(), QueueError> {
        let message = JobMessage { job_id: job.id, pipeline: job.pipeline.clone() };
        let payload = serde_json::to_vec(&message).unwrap_or_default();
        self.producer.send(&self.topic, Some(job.id.to_string().as_bytes()), &payload).await?;
        Ok(())
    }
}

/// Takes jobs from the pipeline's topic and runs them, one at a time, until `stop` turns true.
///
/// Failures to reach Kafka or to record an outcome are logged and retried by rejoining the
/// group, which hands out the uncommitted job again.
pub async fn run_worker(pipeline: Arc<JobPipeline>, kafka: KafkaConfig, mut stop: watch::Receiver<bool>) {
    let mut kafka = kafka;
    kafka
        .properties
        .entry("max.poll.interval.ms".to_owned())
        .or_insert_with(|| MAX_POLL_INTERVAL_MS.to_owned());
    while !*stop.borrow() {
        let worked = tokio::select! {
            result = work(&pipeline, &kafka) => result,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        if let Err(error) = worked {
            tracing::error!(pipeline = %pipeline.name(), "job worker: {error}; rejoining in {RETRY_PAUSE:?}");
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Why the worker stopped taking jobs for a while.
#[derive(Debug, thiserror::Error)]
enum WorkerError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("cannot record the outcome of job {job}: {source}")]
    Store { job: Uuid, source: super::records::JobRecordsError },
}

async fn work(pipeline: &JobPipeline, kafka: &KafkaConfig) -> Result<(), WorkerError> {
    let source = pipeline.source();
    let consumer = GroupConsumer::new(kafka, &source.group, &source.job_topic).map_err(QueueError::from)?;
    tracing::info!(pipeline = %pipeline.name(), topic = %source.job_topic, group = %source.group, "job worker joined");
    loop {
        let batch = consumer.next_batch(1, POLL_WAIT).await.map_err(QueueError::from)?;
        for record in batch {
            run_message(pipeline, &record).await?;
            let next = ((record.topic.clone(), record.partition), record.offset + 1);
            consumer.commit(&[next]).await.map_err(QueueError::from)?;
        }
    }
}

/// Runs the job a message names; a message that names none is logged and skipped.
async fn run_message(pipeline: &JobPipeline, record: &SourceRecord) -> Result<(), WorkerError> {
    let message: JobMessage = match serde_json::from_slice(&record.value) {
        Ok(message) => message,
        Err(error) => {
            tracing::error!(
                partition = record.partition,
                offset = record.offset,
                "skipping a job message that is not {{job_id, pipeline}}: {error}"
            );
            return Ok(());
        }
    };
    if message.pipeline != pipeline.name() {
        tracing::error!(job = %message.job_id, pipeline = %message.pipeline, "skipping a job of another pipeline on this topic");
        return Ok(());
    }
    let (progress, _) = watch::channel(Default::default());
    match pipeline.run(message.job_id, &progress).await {
        Ok(RunOutcome::Unknown(id)) => {
            tracing::error!(job = %id, "skipping a job message for a job that does not exist")
        }
        Ok(RunOutcome::AlreadyLoaded(job)) => {
            tracing::info!(job = %job.id, "job already loaded; nothing to do")
        }
        Ok(RunOutcome::Succeeded(_) | RunOutcome::Failed(_)) => {}
        Err(source) => return Err(WorkerError::Store { job: message.job_id, source }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_job_and_its_pipeline() {
        let id = Uuid::nil();
        let text = serde_json::to_string(&JobMessage { job_id: id, pipeline: "p".into() }).expect("encode");
        assert_eq!(text, r#"{"job_id":"00000000-0000-0000-0000-000000000000","pipeline":"p"}"#);
    }
}
