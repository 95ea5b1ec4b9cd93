//! The job records in PostgreSQL (`sluice_jobs`), shared by every host: any host answers
//! `GET /v1/jobs/{id}`, and the unique (pipeline, bucket, key, ETag) makes a file load once.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio_postgres::{Client, GenericClient, Row};
use uuid::Uuid;

use crate::database::{Database, DatabaseError};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Accepted and waiting for a host to take it.
    Queued,
    /// A host is loading it (or was, and crashed: the job topic hands it out again).
    Running,
    /// Loaded: its rows are in the tables.
    Succeeded,
    /// Stopped with an error and loaded nothing; requesting the file again retries it.
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            _ => return None,
        })
    }
}

/// What a job's object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobInput {
    /// A user's file: records in any shape the reader takes.
    Object,
    /// A dead-letter object of an earlier job, one letter per line, whose refused records
    /// `sluice sweep` runs through the plugins again.
    DeadLetters,
}

impl JobInput {
    pub fn as_str(self) -> &'static str {
        match self {
            JobInput::Object => "object",
            JobInput::DeadLetters => "dead-letters",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "dead-letters" { JobInput::DeadLetters } else { JobInput::Object }
    }
}

/// One version of one object: what a job loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub size: u64,
}

/// A record the plugins refused, kept on the job as an example of what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FailureSample {
    /// The record's position in the input, from 1.
    pub record: u64,
    pub step: String,
    pub reason: String,
}

/// How far a job got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    pub bytes_read: u64,
    pub records_read: u64,
    /// Records a plugin step refused (each counted once); they load nothing of their own.
    pub records_failed: u64,
    /// Dead letters written for them (one per refusal, so a record refused in two parts has two).
    pub dead_letters: u64,
    /// Rows the plugins produced for each table.
    pub rows: BTreeMap<String, u64>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: Uuid,
    pub pipeline: String,
    pub object: ObjectVersion,
    pub input: JobInput,
    pub state: JobState,
    /// Attempts started so far; the current attempt's number while running.
    pub attempts: i32,
    pub counts: JobCounts,
    pub failures: Vec<FailureSample>,
    /// Where the running or last attempt keeps its dead letters.
    pub dead_letter_location: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Why the job store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum JobRecordsError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("job {id} has state `{found}`, which this build does not know")]
    UnknownState { id: Uuid, found: String },
}

const COLUMNS: &str = "id, pipeline, bucket, object_key, etag, size_bytes, input, state, attempts, bytes_read, \
     records_read, records_failed, dead_letters, dead_letter_location, rows_by_table, failures, error, created_at, \
     queued_at, started_at, finished_at";

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn job_from_row(row: &Row) -> Result<JobRecord, JobRecordsError> {
    let id: Uuid = row.get("id");
    let state: String = row.get("state");
    let state = JobState::parse(&state).ok_or(JobRecordsError::UnknownState { id, found: state })?;
    let rows: serde_json::Value = row.get("rows_by_table");
    let failures: serde_json::Value = row.get("failures");
    Ok(JobRecord {
        id,
        pipeline: row.get("pipeline"),
        object: ObjectVersion {
            bucket: row.get("bucket"),
            key: row.get("object_key"),
            etag: row.get("etag"),
            size: unsigned(row.get("size_bytes")),
        },
        input: JobInput::parse(row.get("input")),
        state,
        attempts: row.get("attempts"),
        counts: JobCounts {
            bytes_read: unsigned(row.get("bytes_read")),
            records_read: unsigned(row.get("records_read")),
            records_failed: unsigned(row.get("records_failed")),
            dead_letters: unsigned(row.get("dead_letters")),
            rows: serde_json::from_value(rows).unwrap_or_default(),
        },
        failures: serde_json::from_value(failures).unwrap_or_default(),
        dead_letter_location: row.get("dead_letter_location"),
        error: row.get("error"),
        created_at: row.get("created_at"),
        queued_at: row.get("queued_at"),
        started_at: row.get("started_at"),
        finished_at: row.get("finished_at"),
    })
}

fn rows_json(counts: &JobCounts) -> serde_json::Value {
    serde_json::to_value(&counts.rows).unwrap_or_default()
}

/// A job's counts as the `sluice_jobs` columns store them (bigint), for the statements that
/// record them.
struct CountColumns {
    bytes: i64,
    records: i64,
    failed: i64,
    letters: i64,
}

impl CountColumns {
    fn of(counts: &JobCounts) -> Self {
        CountColumns {
            bytes: signed(counts.bytes_read),
            records: signed(counts.records_read),
            failed: signed(counts.records_failed),
            letters: signed(counts.dead_letters),
        }
    }
}

/// The `sluice_jobs` table through one connection, reopened when it drops.
pub struct JobRecords {
    database: Database,
    client: Mutex<Option<Client>>,
}

/// The outcome of asking to load an object version.
#[derive(Debug, Clone)]
pub struct Submission {
    pub job: JobRecord,
    /// False when the job already existed (the same object version was requested before).
    pub created: bool,
}

impl JobRecords {
    pub fn new(database: Database) -> Self {
        JobRecords { database, client: Mutex::new(None) }
    }

    /// Runs `query` on the shared connection, connecting first when there is none or the last
    /// one closed.
    async fn with_client<T>(
        &self,
        operation: &str,
        query: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, DatabaseError> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = Some(self.database.connect().await?);
        }
        let Some(client) = slot.as_ref() else { return Err(DatabaseError::NotConnected) };
        query(client).await.map_err(DatabaseError::query(operation))
    }

    /// Updates job `id` by `set_where` (`... WHERE id = $1 AND ...`) and returns it as changed;
    /// `None` when the condition left it alone.
    async fn update_one(
        &self,
        operation: &str,
        id: Uuid,
        set_where: &str,
    ) -> Result<Option<JobRecord>, JobRecordsError> {
        let sql = format!("UPDATE sluice_jobs SET {set_where} RETURNING {COLUMNS}");
        let row = self.with_client(operation, async |client| client.query_opt(&sql, &[&id]).await).await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// The job for `object` in `pipeline`, created `queued` if there is none.
    ///
    /// # Errors
    /// [`JobRecordsError`] when the database fails.
    pub async fn create_or_get(
        &self,
        pipeline: &str,
        object: &ObjectVersion,
        input: JobInput,
    ) -> Result<Submission, JobRecordsError> {
        let id = Uuid::new_v4();
        let size = signed(object.size);
        let inserted = self
            .with_client("creating a job", async |client| {
                client
                    .query_opt(
                        &format!(
                            "INSERT INTO sluice_jobs (id, pipeline, bucket, object_key, etag, size_bytes, input, state) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued') \
                             ON CONFLICT (pipeline, bucket, object_key, etag) DO NOTHING RETURNING {COLUMNS}"
                        ),
                        &[&id, &pipeline, &object.bucket, &object.key, &object.etag, &size, &input.as_str()],
                    )
                    .await
            })
            .await?;
        if let Some(row) = inserted {
            return Ok(Submission { job: job_from_row(&row)?, created: true });
        }
        let existing = self
            .with_client("reading an existing job", async |client| {
                client
                    .query_one(
                        &format!(
                            "SELECT {COLUMNS} FROM sluice_jobs \
                             WHERE pipeline = $1 AND bucket = $2 AND object_key = $3 AND etag = $4"
                        ),
                        &[&pipeline, &object.bucket, &object.key, &object.etag],
                    )
                    .await
            })
            .await?;
        Ok(Submission { job: job_from_row(&existing)?, created: false })
    }

    /// The job `id`, if there is one.
    ///
    /// # Errors
    /// [`JobRecordsError`] when the database fails.
    pub async fn get(&self, id: Uuid) -> Result<Option<JobRecord>, JobRecordsError> {
        let row = self
            .with_client("reading a job", async |client| {
                client.query_opt(&format!("SELECT {COLUMNS} FROM sluice_jobs WHERE id = $1"), &[&id]).await
            })
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Puts a failed job back to `queued`; `None` when it is not failed (any more).
    ///
    /// # Errors
    /// [`JobRecordsError`] when the database fails.
    pub async fn requeue_failed(&self, id: Uuid) -> Result<Option<JobRecord>, JobRecordsError> {
        self.update_one(
            "re-queueing a failed job",
            id,
            "state = 'queued', queued_at = now(), updated_at = now() WHERE id = $1 AND state = 'failed'",
        )
        .await
    }

    /// Notes where `attempt` of job `id` keeps its dead letters.
    ///
    /// # Errors
    /// [`JobRecordsError`] when the database fails.
    pub async fn record_dead_letter_location(
        &self,
        id: Uuid,
        attempt: i32,
        location: &str,
    ) -> Result<(), JobRecordsError> {
        self.with_client("recording where dead letters go", async |client| {
            client
                .execute(
                    "UPDATE sluice_jobs SET dead_letter_location = $3, updated_at = now() \
                     WHERE id = $1 AND attempts = $2",
                    &[&id, &attempt, &location],
                )
                .await
        })
        .await?;
        Ok(())
    }

    /// Marks a `queued` job that has waited at least `waited` as queued anew and returns it, so
    /// it can be put on the job topic again; `None` when it is not queued (any more) or was
    /// queued more recently. This recovers a job whose host stopped between creating it and
    /// queueing it; queueing one twice is harmless, as an attempt starts only on a job that
    /// has not succeeded and the job row lock lets exactly one attempt load.
    ///
    /// # Errors
    /// [`JobRecordsError`] when the database fails.
    pub async fn requeue_waiting(
        &self,
        id: Uuid,
        waited: Duration,
    ) -> Result<Option<JobRecord>, JobRecordsError> {
        let seconds = waited.as_secs_f64();
        let row = self
            .with_client("re-queueing a waiting job", async |client| {
                client
                    .query_opt(
                        &format!(
                            "UPDATE sluice_jobs SET queued_at = now(), updated_at = now() \
                             WHERE id = $1 AND state = 'queued' \
                             AND queued_at <= now() - make_interval(secs => $2) RETURNING {COLUMNS}"
                        ),
                        &[&id, &seconds],
                    )
                    .await
            })
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Marks a `queued` job failed because it could not be put on the job topic, so asking
    /// for the object again queues it anew instead of finding it waiting forever.
    ///
    /// # Errors
    /// [`JobRecordsError`] when the database fails.
    pub async fn record_queueing_failure(&self, id: Uuid, error: &str) -> Result<(), JobRecordsError> {
        self.with_client("recording a queueing failure", async |client| {
            client
                .execute(
                    "UPDATE sluice_jobs SET state = 'failed', error = $2, finished_at = now(), updated_at = now() \
                     WHERE id = $1 AND state = 'queued'",
                    &[&id, &error],
                )
                .await
        })
        .await?;
        Ok(())
    }

    /// Starts a new attempt of job `id` unless it has succeeded: the job becomes `running`, its
    /// counts and error are cleared, and `attempts` counts this one. `None` when the job is
    /// unknown or already succeeded.
    ///
    /// # Errors
    /// [`JobRecordsError`] when the database fails.
    pub async fn claim(&self, id: Uuid) -> Result<Option<JobRecord>, JobRecordsError> {
        self.update_one(
            "starting a job attempt",
            id,
            "state = 'running', attempts = attempts + 1, started_at = now(), \
             finished_at = NULL, error = NULL, bytes_read = 0, records_read = 0, \
             records_failed = 0, dead_letters = 0, dead_letter_location = NULL, rows_by_table = '{}', \
             failures = '[]', updated_at = now() \
             WHERE id = $1 AND state <> 'succeeded'",
        )
        .await
    }

    /// Records how far `attempt` of job `id` got, while it runs.
    ///
    /// # Errors
    /// [`JobRecordsError`] when the database fails.
    pub async fn record_progress(
        &self,
        id: Uuid,
        attempt: i32,
        counts: &JobCounts,
    ) -> Result<(), JobRecordsError> {
        let CountColumns { bytes, records, failed, letters } = CountColumns::of(counts);
        self.with_client("recording job progress", async |client| {
            client
                .execute(
                    "UPDATE sluice_jobs SET bytes_read = $3, records_read = $4, records_failed = $5, \
                     dead_letters = $6, updated_at = now() \
                     WHERE id = $1 AND attempts = $2 AND state = 'running'",
                    &[&id, &attempt, &bytes, &records, &failed, &letters],
                )
                .await
        })
        .await?;
        Ok(())
    }

    /// Marks `attempt` of job `id` failed with `error`, unless a later attempt took over or the
    /// job succeeded meanwhile.
    ///
    /// # Errors
    /// [`JobRecordsError`] when the database fails.
    pub async fn record_failure(
        &self,
        id: Uuid,
        attempt: i32,
        counts: &JobCounts,
        failures: &[FailureSample],
        error: &str,
    ) -> Result<(), JobRecordsError> {
        let CountColumns { bytes, records, failed, letters } = CountColumns::of(counts);
        let (rows, failures) = (rows_json(counts), serde_json::to_value(failures).unwrap_or_default());
        self.with_client("recording a job failure", async |client| {
            client
                .execute(
                    "UPDATE sluice_jobs SET state = 'failed', error = $3, bytes_read = $4, records_read = $5, \
                     records_failed = $6, rows_by_table = $7, failures = $8, dead_letters = $9, \
                     finished_at = now(), updated_at = now() \
                     WHERE id = $1 AND attempts = $2 AND state = 'running'",
                    &[&id, &attempt, &error, &bytes, &records, &failed, &rows, &failures, &letters],
                )
                .await
        })
        .await?;
        Ok(())
    }
}

/// Inside the load's transaction: locks job `id` until commit and returns its state, so of
/// two attempts racing to the finish exactly one loads.
///
/// # Errors
/// [`JobRecordsError`] when the database fails.
pub async fn lock_for_commit(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<JobState>, JobRecordsError> {
    let row = client
        .query_opt("SELECT state FROM sluice_jobs WHERE id = $1 FOR UPDATE", &[&id])
        .await
        .map_err(DatabaseError::query("locking the job row"))?;
    let Some(row) = row else { return Ok(None) };
    let state: String = row.get(0);
    Ok(Some(JobState::parse(&state).ok_or(JobRecordsError::UnknownState { id, found: state })?))
}

/// Inside the load's transaction: marks job `id` succeeded with its final counts. The finish
/// time is this statement's, not the transaction's (`now()`), which began before the first row
/// was read.
///
/// # Errors
/// [`JobRecordsError`] when the database fails.
pub async fn record_success(
    client: &impl GenericClient,
    id: Uuid,
    counts: &JobCounts,
    failures: &[FailureSample],
) -> Result<(), JobRecordsError> {
    let CountColumns { bytes, records, failed, letters } = CountColumns::of(counts);
    let (rows, failures) = (rows_json(counts), serde_json::to_value(failures).unwrap_or_default());
    client
        .execute(
            "UPDATE sluice_jobs SET state = 'succeeded', error = NULL, bytes_read = $2, records_read = $3, \
             records_failed = $4, rows_by_table = $5, failures = $6, dead_letters = $7, \
             finished_at = statement_timestamp(), updated_at = statement_timestamp() WHERE id = $1",
            &[&id, &bytes, &records, &failed, &rows, &failures, &letters],
        )
        .await
        .map_err(DatabaseError::query("marking the job succeeded"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Failed] {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).ok(), Some(serde_json::json!(state.as_str())));
        }
        assert_eq!(JobState::parse("done"), None);
    }
}
