//! Streaming one output's rows with binary `COPY`: into its staging table, or, for one append
//! per load, straight into its table inside the load's transaction.

use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Transaction};

use super::cell::Cell;
use super::table::{RowOrigin, TablePlan, quote_identifier};
use super::{Database, DatabaseError};
use crate::plugin::rows::{RowRef, Value};
use crate::plugin::schema::OutputSchema;

/// Why rows could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(
        "{output} row of input record {record}, field `{field}` → column `{column}` of `{table}`: {reason}"
    )]
    Value { output: String, record: i64, field: String, column: String, table: String, reason: String },
}

/// The staging table of sink `index` in `attempt` of job `job`: unique per attempt, so an
/// attempt still running elsewhere never writes into the next attempt's table.
pub fn staging_table_name(job: &uuid::Uuid, attempt: i32, index: usize) -> String {
    format!("{}{attempt}_{index}", staging_prefix(job))
}

fn staging_prefix(job: &uuid::Uuid) -> String {
    format!("sluice_stage_{}_", job.simple())
}

/// Drops every staging table of `job` in the current schema (left by a crashed attempt, or by
/// this one after its move), except those of attempt `keep`.
///
/// # Errors
/// [`DatabaseError::Query`] when the catalog cannot be read or a table cannot be dropped.
pub async fn drop_staging_tables(
    client: &Client,
    job: &uuid::Uuid,
    keep: Option<i32>,
) -> Result<usize, DatabaseError> {
    let prefix = staging_prefix(job);
    let rows = client
        .query(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND starts_with(tablename, $1)",
            &[&prefix],
        )
        .await
        .map_err(DatabaseError::query("listing staging tables"))?;
    let kept = keep.map(|attempt| format!("{prefix}{attempt}_"));
    let mut dropped = 0;
    for row in rows {
        let table: String = row.get(0);
        if kept.as_ref().is_some_and(|kept| table.starts_with(kept.as_str())) {
            continue;
        }
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS {}", quote_identifier(&table)))
            .await
            .map_err(DatabaseError::query(format!("dropping staging table {table}")))?;
        dropped += 1;
    }
    Ok(dropped)
}

/// A `COPY` of one sink's rows, open for the whole job, so the sinks of one job load side by
/// side: into a staging table on a connection of its own, or straight into the table on the
/// connection whose transaction commits the load.
pub struct CopyWriter {
    plan: Arc<TablePlan>,
    writer: Pin<Box<BinaryCopyInWriter>>,
    target: CopyTarget,
    rows: u64,
    /// The declaration `positions` were found in.
    declaration: Option<Arc<OutputSchema>>,
    /// Where each of the plan's fields is in rows of `declaration`.
    positions: Vec<Option<usize>>,
}

/// Where a [`CopyWriter`]'s rows go.
enum CopyTarget {
    /// A staging table; rows lead with their input position, which the move orders by.
    Staged {
        /// Keeps the connection open while the copy runs.
        _client: Client,
    },
    /// The table itself; rows end with the load time when the table has a column for it.
    Direct { ingested_at: Option<Cell> },
}

impl CopyWriter {
    /// Connects, creates the staging table `stage` and starts the `COPY`.
    ///
    /// # Errors
    /// [`LoadError::Database`] when connecting, creating the table or starting the copy fails.
    pub async fn open(database: &Database, plan: Arc<TablePlan>, stage: &str) -> Result<Self, LoadError> {
        let client = database.connect().await?;
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {}; {}",
                quote_identifier(stage),
                plan.create_staging_statement(stage)
            ))
            .await
            .map_err(DatabaseError::query(format!("creating staging table {stage} for `{}`", plan.table)))?;
        let sink = client
            .copy_in(&plan.copy_statement(stage))
            .await
            .map_err(DatabaseError::query(format!("starting the COPY into {stage}")))?;
        let writer = Box::pin(BinaryCopyInWriter::new(sink, &plan.copy_types()));
        Ok(CopyWriter {
            plan,
            writer,
            target: CopyTarget::Staged { _client: client },
            rows: 0,
            declaration: None,
            positions: Vec::new(),
        })
    }

    /// Starts a `COPY` straight into the plan's table inside `transaction`, so its rows are
    /// written once and become visible with the load's commit; `None` when the plan cannot be
    /// copied that way (see [`TablePlan::direct_copy_statement`]). The transaction's
    /// connection runs nothing else until [`CopyWriter::finish`].
    ///
    /// # Errors
    /// [`LoadError::Database`] when the copy cannot start.
    pub async fn open_direct(
        transaction: &Transaction<'_>,
        plan: Arc<TablePlan>,
        loaded_at: DateTime<Utc>,
    ) -> Result<Option<Self>, LoadError> {
        let Some(statement) = plan.direct_copy_statement() else { return Ok(None) };
        let sink = transaction
            .copy_in(&statement)
            .await
            .map_err(DatabaseError::query(format!("starting the COPY into `{}`", plan.table)))?;
        let writer = Box::pin(BinaryCopyInWriter::new(sink, &plan.direct_copy_types()));
        let ingested_at = plan.ingested_at_cell(loaded_at);
        Ok(Some(CopyWriter {
            plan,
            writer,
            target: CopyTarget::Direct { ingested_at },
            rows: 0,
            declaration: None,
            positions: Vec::new(),
        }))
    }

    /// Stages one typed row as input record `record`'s row, with its `origin` in the table's
    /// lineage columns.
    ///
    /// # Errors
    /// [`LoadError::Value`] when a value does not fit its column; [`LoadError::Database`] when
    /// the copy fails.
    pub async fn write(&mut self, record: i64, row: &RowRef, origin: RowOrigin<'_>) -> Result<(), LoadError> {
        self.find_fields(row.batch().schema());
        let mut cells = Vec::with_capacity(self.plan.columns().len() + self.plan.lineage().len() + 2);
        if let CopyTarget::Staged { .. } = self.target {
            cells.push(Cell::Int8(record));
        }
        for (column, position) in self.plan.columns().iter().zip(&self.positions) {
            let value = position.map_or(Value::Null, |at| row.value(at));
            let cell = column.kind.cell(value).map_err(|reason| LoadError::Value {
                output: self.plan.output.clone(),
                record,
                field: column.field.clone(),
                column: column.column.clone(),
                table: self.plan.table.clone(),
                reason,
            })?;
            cells.push(cell);
        }
        cells.extend(self.plan.lineage_cells(origin));
        if let CopyTarget::Direct { ingested_at: Some(loaded_at) } = &self.target {
            cells.push(loaded_at.clone());
        }
        let values: Vec<&(dyn ToSql + Sync)> = cells.iter().map(|cell| cell as &(dyn ToSql + Sync)).collect();
        self.writer
            .as_mut()
            .write(&values)
            .await
            .map_err(DatabaseError::query(format!("copying a row for `{}`", self.plan.table)))?;
        self.rows += 1;
        Ok(())
    }

    /// Ends the `COPY`; returns the rows copied. Dropping the writer instead aborts the copy.
    ///
    /// # Errors
    /// [`LoadError::Database`] when the server rejects the copy.
    pub async fn finish(mut self) -> Result<u64, LoadError> {
        self.writer
            .as_mut()
            .finish()
            .await
            .map_err(DatabaseError::query(format!("finishing the COPY for `{}`", self.plan.table)))?;
        Ok(self.rows)
    }

    /// Finds where the plan's fields are in rows declared by `schema`, once per declaration
    /// (every row of one plugin version shares its declaration). A field the declaration
    /// lacks is null, as a missing field always was.
    fn find_fields(&mut self, schema: &Arc<OutputSchema>) {
        if self.declaration.as_ref().is_some_and(|known| Arc::ptr_eq(known, schema)) {
            return;
        }
        self.positions = self.plan.columns().iter().map(|column| schema.position(&column.field)).collect();
        self.declaration = Some(schema.clone());
    }

    /// Rows copied so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn plan(&self) -> &TablePlan {
        &self.plan
    }
}
