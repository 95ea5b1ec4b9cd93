//! A job pipeline's `postgres` sinks as one load per attempt (see
//! [`crate::sink::transactional`]).
//!
//! The transaction is opened first, on the attempt's control connection. Every sink whose rows
//! replace nothing (an append, or an upsert into a table that holds no rows, see
//! [`TablePlan::try_lock_replace`]) copies them straight into its table inside that
//! transaction, through [`SharedCopies`] (one connection runs one `COPY` at a time), so they
//! are written once. Every other sink streams into an unlogged staging table on a connection
//! of its own, and so does an upsert copied straight in from its first key that may repeat;
//! the staged rows are moved into their tables by the same transaction at the commit,
//! replacing the rows of the keys they bring. Nothing is visible in the real tables before the
//! transaction commits, which also marks the job succeeded; a crash at any point leaves the
//! tables as they were, and staging tables that the next attempt drops.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::writer::{SinkLoad, SinkWriter, StagingTables};
use super::{
    CopyWriter, LoadError, PostgresSinkSettings, SharedCopies, TablePlan, TableSinkSpec, drop_staging_tables,
    quote_identifier, staging_table_name,
};
use crate::database::{Database, DatabaseError, apply_pipeline_sql};
use crate::plugin::PluginRegistry;
use crate::sink::transactional::{
    CommitRecord, Committed, Load, LoadAttempt, LoadContext, LoadFailure, LoadMessage, LoadTarget,
    LoadWriter, TransactionalSinkError, TransactionalSinks, Written,
};

/// Sort memory of the transaction that moves staged rows into the tables.
const MOVE_WORK_MEM: &str = "256MB";

/// A sink's writer in a load: `COPY` into the table or a staging table.
type TableWriter = SinkWriter<CopyWriter, StagingTables>;

/// A job pipeline's `postgres` sinks: their tables, resolved against the database.
pub struct PostgresSinks {
    database: Database,
    targets: Vec<LoadTarget>,
    plans: Vec<Arc<TablePlan>>,
}

impl PostgresSinks {
    /// The pipeline's `postgres` sinks (`sinks`, each with its `from`): applies the pipeline's
    /// `tables_sql` (once per version of the file), then resolves each table, so a table that
    /// lacks a column of its output stops the start rather than the first load.
    ///
    /// # Errors
    /// [`TransactionalSinkError`] naming what does not fit.
    pub async fn build(
        sinks: &[(&str, &PostgresSinkSettings)],
        context: &LoadContext<'_>,
    ) -> Result<Self, TransactionalSinkError> {
        let setup = |error: Box<dyn std::error::Error + Send + Sync>| TransactionalSinkError::Setup(error);
        let pipeline = context.pipeline;
        let mut client = context.database.connect().await.map_err(|error| setup(error.into()))?;
        if let Some(path) = pipeline.tables_sql_path() {
            let sql = std::fs::read_to_string(&path).map_err(|error| {
                setup(format!("cannot read tables_sql {}: {error}", path.display()).into())
            })?;
            let file =
                path.file_name().map_or_else(|| path.display().to_string(), |f| f.to_string_lossy().into());
            if apply_pipeline_sql(&mut client, &pipeline.name, &file, &sql)
                .await
                .map_err(|error| setup(error.into()))?
            {
                tracing::info!(pipeline = %pipeline.name, file = %path.display(), "pipeline tables SQL applied");
            }
        }
        let mut resolved = Vec::with_capacity(sinks.len());
        for (index, (from, settings)) in sinks.iter().enumerate() {
            let spec = TableSinkSpec {
                output: (*from).to_owned(),
                table: settings.table.clone(),
                fields: output_fields(context.registry, from)?,
                upsert_key: settings.upsert_key.clone(),
                ingested_at_column: settings.ingested_at_column.clone(),
            };
            let plan = TablePlan::resolve(&client, &spec).await.map_err(|error| setup(error.into()))?;
            let last_reader = !sinks[index + 1..].iter().any(|(later, _)| later == from);
            let target = LoadTarget { output: (*from).to_owned(), name: plan.table.clone(), last_reader };
            resolved.push((target, Arc::new(plan)));
        }
        let (targets, plans) = resolved.into_iter().unzip();
        Ok(PostgresSinks { database: context.database.clone(), targets, plans })
    }

    async fn open(&self, attempt: LoadAttempt) -> Result<PostgresLoad, LoadError> {
        let control = self.database.connect().await?;
        let mut load = PostgresLoad {
            control,
            database: self.database.clone(),
            plans: self.plans.clone(),
            attempt,
            writers: Vec::new(),
            shared: None,
        };
        match load.begin().await {
            Ok(()) => Ok(load),
            Err(error) => {
                load.abandon().await;
                Err(error)
            }
        }
    }
}

impl TransactionalSinks for PostgresSinks {
    fn targets(&self) -> &[LoadTarget] {
        &self.targets
    }

    fn begin<'a>(&'a self, attempt: LoadAttempt) -> BoxFuture<'a, Result<Box<dyn Load>, LoadFailure>> {
        Box::pin(async move {
            let load = self.open(attempt).await.map_err(LoadFailure::new)?;
            Ok(Box::new(load) as Box<dyn Load>)
        })
    }
}

/// One attempt's transaction and its sinks' writers.
struct PostgresLoad {
    /// The connection whose transaction commits the load.
    control: Client,
    database: Database,
    plans: Vec<Arc<TablePlan>>,
    attempt: LoadAttempt,
    writers: Vec<TableWriter>,
    /// The rows copied straight into their tables through `control`, until [`Load::run`].
    shared: Option<SharedCopies>,
}

impl PostgresLoad {
    /// Drops what earlier attempts left, opens the transaction and a writer per sink.
    async fn begin(&mut self) -> Result<(), LoadError> {
        let job = self.attempt.job;
        // `timestamp` columns get the load time as UTC wall time.
        self.control
            .batch_execute("SET TIME ZONE 'UTC'")
            .await
            .map_err(DatabaseError::query("setting the time zone"))?;
        let dropped = drop_staging_tables(&self.control, &job, None).await?;
        if dropped > 0 {
            tracing::info!(job = %job, dropped, "dropped the staging tables of an earlier attempt");
        }
        // The upsert's DISTINCT ON sorts the whole staged output; with the default 4 MB it
        // spills to disk. Local to this transaction.
        self.control
            .batch_execute(&format!("BEGIN; SET LOCAL work_mem = '{MOVE_WORK_MEM}'"))
            .await
            .map_err(DatabaseError::query("starting the load transaction"))?;
        // Rows go straight into their tables through this transaction's connection when nothing
        // needs replacing: appends, and upserts into tables that hold no rows. The rest are
        // staged on connections of their own and moved at the commit.
        let mut shared = SharedCopies::new();
        // Replace locks are taken in the sinks' order; after one is missed, none is tried, so
        // the ones held are always the first ones, which keeps the commit's order.
        let mut locking = true;
        for (index, plan) in self.plans.iter().enumerate() {
            let stage = staging_table_name(&job, self.attempt.attempt, index);
            let mut straight_in = !plan.is_upsert();
            if plan.is_upsert() && locking && plan.copies_into_empty_table() {
                locking = plan.try_lock_replace(&self.control).await?;
                straight_in = locking && !plan.holds_rows(&self.control).await?;
            }
            let opened = if straight_in {
                shared.add(plan).and_then(|segments| {
                    CopyWriter::open_shared(plan.clone(), self.attempt.loaded_at, segments)
                })
            } else {
                None
            };
            let writer = match opened {
                Some(writer) => {
                    let fallback = plan
                        .is_upsert()
                        .then(|| StagingTables { database: self.database.clone(), plan: plan.clone() });
                    TableWriter::straight_in(writer, stage, fallback)
                }
                None => {
                    TableWriter::staged(CopyWriter::open(&self.database, plan.clone(), &stage).await?, stage)
                }
            };
            self.writers.push(writer);
        }
        self.shared = Some(shared);
        Ok(())
    }

    /// Rolls the transaction back (when one is open) and drops the attempt's staging tables,
    /// which live outside it.
    async fn abandon(&self) {
        if let Err(error) = self.control.batch_execute("ROLLBACK").await {
            tracing::debug!(job = %self.attempt.job, "rolling back an abandoned load: {error}");
        }
        if let Err(error) = drop_staging_tables(&self.control, &self.attempt.job, None).await {
            tracing::warn!(job = %self.attempt.job, "staging tables left behind: {error}");
        }
    }

    /// Moves every staging table into its table and records the job's success, then commits;
    /// the job's record is locked first so two attempts cannot both load (the loser's
    /// transaction, with the rows it copied in place, is rolled back).
    async fn commit_loads(
        &self,
        loads: Vec<SinkLoad>,
        record: &dyn CommitRecord,
    ) -> Result<Committed, LoadFailure> {
        let control = &self.control;
        let query = |what: &'static str| move |error| LoadFailure::new(DatabaseError::query(what)(error));
        // Before the job's record, as every load takes them.
        for plan in self.plans.iter().filter(|plan| plan.is_upsert()) {
            plan.lock_replace(control).await.map_err(LoadFailure::new)?;
        }
        if !record.claim(control).await? {
            self.abandon().await;
            return Ok(Committed::LoadedElsewhere);
        }
        for (plan, load) in self.plans.iter().zip(&loads) {
            let Some((stage, copied)) = &load.staged else { continue };
            let started = std::time::Instant::now();
            let moved = plan
                .move_staged(control, stage, copied.keys_unique, self.attempt.loaded_at)
                .await
                .map_err(LoadFailure::new)?;
            tracing::debug!(job = %self.attempt.job, table = %plan.table, moved, keys_unique = copied.keys_unique, copied_in = load.copied_in, elapsed = ?started.elapsed(), "rows moved");
        }
        record.record(control).await?;
        for (stage, _) in loads.iter().filter_map(|load| load.staged.as_ref()) {
            control.batch_execute(&format!("DROP TABLE {}", quote_identifier(stage))).await.map_err(
                |error| {
                    LoadFailure::new(DatabaseError::query(format!("dropping staging table {stage}"))(error))
                },
            )?;
        }
        control.batch_execute("COMMIT").await.map_err(query("committing the load"))?;
        Ok(Committed::Loaded)
    }
}

impl Load for PostgresLoad {
    fn writers(&mut self) -> Vec<Box<dyn LoadWriter>> {
        self.writers.drain(..).map(|writer| Box::new(writer) as Box<dyn LoadWriter>).collect()
    }

    fn run(&mut self) -> BoxFuture<'_, Result<bool, LoadFailure>> {
        Box::pin(async move {
            let Some(shared) = self.shared.take() else { return Ok(true) };
            shared.run(&self.control).await.map_err(LoadFailure::new)
        })
    }

    fn commit<'a>(
        self: Box<Self>,
        written: Vec<Written>,
        record: &'a dyn CommitRecord,
    ) -> BoxFuture<'a, Result<Committed, LoadFailure>> {
        Box::pin(async move {
            let loads: Vec<SinkLoad> = written
                .into_iter()
                .map(|written| written.0.downcast::<SinkLoad>().map(|load| *load))
                .collect::<Result<_, _>>()
                .map_err(|_| LoadFailure::new(LoadError::ForeignWrites))?;
            let result = self.commit_loads(loads, record).await;
            if result.is_err() {
                self.abandon().await;
            }
            result
        })
    }

    fn discard(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move { self.abandon().await })
    }
}

impl LoadWriter for TableWriter {
    fn run(
        self: Box<Self>,
        rows: mpsc::Receiver<LoadMessage>,
        job_id: String,
    ) -> BoxFuture<'static, Result<Option<Written>, LoadFailure>> {
        Box::pin(async move {
            let load = SinkWriter::run(*self, rows, job_id).await.map_err(LoadFailure::new)?;
            Ok(load.map(|load| Written(Box::new(load))))
        })
    }
}

/// The field names `output` (`<plugin>.<output>`) declares in its schema.
fn output_fields(registry: &PluginRegistry, output: &str) -> Result<Vec<String>, TransactionalSinkError> {
    let declared = crate::sink::output_schema(registry, output)
        .ok_or_else(|| TransactionalSinkError::UnknownOutput { output: output.to_owned() })?;
    Ok(declared.columns.iter().map(|column| column.name.clone()).collect())
}
