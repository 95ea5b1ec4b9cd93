//! What a job loads through, whatever the sink's kind: one load per attempt across every sink
//! of the pipeline, whose rows become visible together, in the same commit as the job's own
//! record, or not at all.
//!
//! An attempt drives its load (`job::runner`):
//! 1. [`TransactionalSinks::begin`] opens it;
//! 2. each of [`Load::writers`] runs as a task of its own, taking its sink's rows as
//!    [`LoadMessage`]s until [`LoadMessage::Finish`], while [`Load::run`] does what the writers
//!    need done on the load's own connection, until every writer has finished or gone;
//! 3. [`Load::commit`] makes every sink's rows visible at once, with the job's
//!    [`CommitRecord`], unless another attempt loaded the object first.
//!
//! A load dropped before its commit leaves nothing visible; [`Load::discard`] also removes what
//! it kept outside its transaction. Jobs keep their records in the host's PostgreSQL database
//! and a load's record must commit with the load, so a transactional sink's commit is a
//! transaction on that database.

use std::any::Any;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::plugin::rows::RowRef;

/// One row bound for a sink.
pub struct LoadRow {
    /// The input record it came from, from 1.
    pub record: i64,
    pub row: RowRef,
    /// `name@version` of the plugin that made it.
    pub plugin_version: Arc<str>,
}

/// What a sink's writer receives: rows, then the word to finish. A channel closed without
/// [`LoadMessage::Finish`] abandons the load.
pub enum LoadMessage {
    Rows(Vec<LoadRow>),
    Finish,
}

/// Why a load failed; nothing it wrote is visible.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct LoadFailure(Box<dyn std::error::Error + Send + Sync>);

impl LoadFailure {
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        LoadFailure(Box::new(error))
    }
}

/// Why a job pipeline's sinks cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TransactionalSinkError {
    #[error("sink for {output} is `{kind}`; jobs load into {allowed} sinks only")]
    NotTransactional { output: String, kind: &'static str, allowed: String },
    #[error("sink `from = \"{output}\"` names no declared plugin output")]
    UnknownOutput { output: String },
    #[error(transparent)]
    Setup(Box<dyn std::error::Error + Send + Sync>),
}

/// What building a job pipeline's sinks may need.
pub struct LoadContext<'a> {
    pub pipeline: &'a crate::config::Pipeline,
    pub registry: &'a crate::plugin::PluginRegistry,
    /// The host's database, where jobs keep their records.
    pub database: &'a crate::database::Database,
}

/// One sink of a job pipeline as the job sees it.
#[derive(Debug, Clone)]
pub struct LoadTarget {
    /// The `<plugin>.<output>` it takes rows from.
    pub output: String,
    /// What its rows are counted under in the job's record (a table's name).
    pub name: String,
    /// Whether no later sink reads the same output, so this one may take the rows.
    pub last_reader: bool,
}

/// The attempt a load belongs to.
#[derive(Debug, Clone, Copy)]
pub struct LoadAttempt {
    pub job: Uuid,
    pub attempt: i32,
    /// When the attempt started: the load time its rows carry.
    pub loaded_at: DateTime<Utc>,
}

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// The rows are visible and the job's record says so.
    Loaded,
    /// Another attempt had committed first; this load's rows were discarded.
    LoadedElsewhere,
}

/// What one sink's writer leaves for the commit; only its own load reads it.
pub struct Written(pub Box<dyn Any + Send>);

/// The sinks of one job pipeline.
pub trait TransactionalSinks: Send + Sync {
    /// Each sink, in the pipeline's order: the order of [`Load::writers`].
    fn targets(&self) -> &[LoadTarget];

    /// Opens the load of `attempt`, after removing what earlier attempts of its job left.
    fn begin<'a>(&'a self, attempt: LoadAttempt) -> BoxFuture<'a, Result<Box<dyn Load>, LoadFailure>>;
}

/// One attempt's load; see the module documentation for the order of the calls.
pub trait Load: Send {
    /// A writer per sink, in [`TransactionalSinks::targets`] order; taken once.
    fn writers(&mut self) -> Vec<Box<dyn LoadWriter>>;

    /// Does what the writers need done on the load's own connection until every writer has
    /// finished (`Ok(true)`) or one went away without finishing (`Ok(false)`).
    fn run(&mut self) -> BoxFuture<'_, Result<bool, LoadFailure>>;

    /// Makes the rows `written` (the writers' results, in order) visible with the job's
    /// record, or, when another attempt committed first, discards them.
    fn commit<'a>(
        self: Box<Self>,
        written: Vec<Written>,
        record: &'a dyn CommitRecord,
    ) -> BoxFuture<'a, Result<Committed, LoadFailure>>;

    /// Gives up the load, removing what it kept outside its transaction.
    fn discard(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// One sink's writer in a load.
pub trait LoadWriter: Send {
    /// Writes the rows it receives; `Ok(None)` when the load was abandoned.
    fn run(
        self: Box<Self>,
        rows: mpsc::Receiver<LoadMessage>,
        job_id: String,
    ) -> BoxFuture<'static, Result<Option<Written>, LoadFailure>>;
}

/// The job's own record, written by the load's transaction.
pub trait CommitRecord: Sync {
    /// Locks the job's record; false when another attempt has already loaded it.
    fn claim<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<bool, LoadFailure>>;

    /// Marks the job loaded, with what the attempt counted.
    fn record<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<(), LoadFailure>>;
}
