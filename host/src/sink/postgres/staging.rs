//! Streaming one output's rows with binary `COPY`: into its staging table, or straight into
//! its table inside the load's transaction (see [`super::shared_copy`]).

use std::hash::Hasher;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::SinkExt;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{Client, CopyInSink};

use super::cell::Cell;
use super::shared_copy::SegmentSender;
use super::table::{RowOrigin, TablePlan, quote_identifier};
use crate::database::{Database, DatabaseError};
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
    #[error("encoding a row for `{table}`: {reason}")]
    Encode { table: String, reason: String },
    #[error("the load's connection stopped copying rows into `{table}`")]
    SharedCopyStopped { table: String },
    #[error("a load was handed what another load's writers wrote")]
    ForeignWrites,
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
    /// Binary `COPY` rows not yet sent; see [`CopyRows`].
    rows_out: CopyRows,
    target: CopyTarget,
    rows: u64,
    /// The declaration `positions` were found in.
    declaration: Option<Arc<OutputSchema>>,
    /// Where each of the plan's fields is in rows of `declaration`.
    positions: Vec<Option<usize>>,
    /// The key's columns among the plan's columns, when rows' keys are told apart by hash.
    key_columns: Vec<usize>,
    /// For a staged upsert: whether the keys copied so far were all different.
    keys: Option<DistinctKeys>,
    /// For an upsert copied straight into its table: the hashes of the keys copied so far.
    seen_keys: Option<SeenKeys>,
}

/// The key hashes an upsert copied straight into its table has written, so the first row whose
/// key may repeat one is found before it is written (see [`CopyWriter::write_new_key`]).
struct SeenKeys {
    hashes: std::collections::HashSet<u64, std::hash::BuildHasherDefault<PassThrough>>,
}

impl SeenKeys {
    /// About 9 to 18 bytes each in the set: 2M keys hold at most 38 MB. Past it, rows are
    /// staged, which only costs the move.
    const LIMIT: usize = 2 << 20;

    /// Whether `hash` is new; false for a repeat, and for every key past the limit.
    fn insert(&mut self, hash: u64) -> bool {
        self.hashes.len() < Self::LIMIT && self.hashes.insert(hash)
    }
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Whether every row of a staged upsert had a key of its own, told from the hashes of the
/// key cells' bytes: when they were, the move needs no sort to find the last row per key
/// ([`TablePlan::move_statement`]). A repeated hash (a repeated key, or rarely two keys with
/// one hash) only means the sort is paid, so the answer is never wrong; past
/// [`DistinctKeys::LIMIT`] keys it stops counting and the sort is paid too, so memory stays
/// bounded whatever the file's size. The hashes are appended as they come and sorted once at
/// the end: a hash set probed per row cost more CPU than the sort it avoided.
struct DistinctKeys {
    hashes: Vec<u64>,
    /// False once the limit was passed.
    counting: bool,
}

impl DistinctKeys {
    /// 8 bytes each: 8M keys hold at most 64 MB.
    const LIMIT: usize = 8 << 20;

    fn new() -> Self {
        DistinctKeys { hashes: Vec::new(), counting: true }
    }

    fn add(&mut self, hash: u64) {
        if !self.counting {
            return;
        }
        if self.hashes.len() >= Self::LIMIT {
            self.counting = false;
            self.hashes = Vec::new();
            return;
        }
        self.hashes.push(hash);
    }

    /// Whether no hash repeated; sorts the hashes, so it is asked once, at the end.
    fn all_different(&mut self) -> bool {
        if !self.counting {
            return false;
        }
        self.hashes.sort_unstable();
        self.hashes.windows(2).all(|pair| pair[0] != pair[1])
    }
}

/// What a finished [`CopyWriter`] copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub rows: u64,
    /// Whether the rows' keys were all different (told by `DistinctKeys`).
    pub keys_unique: bool,
}

/// Where a [`CopyWriter`]'s rows go.
enum CopyTarget {
    /// A staging table; rows lead with their input position, which the move orders by.
    Staged {
        sink: Pin<Box<CopyInSink<Bytes>>>,
        /// Keeps the connection open while the copy runs.
        _client: Client,
    },
    /// The table itself, through the load's connection, which copies the segments it is sent;
    /// rows end with the load time when the table has a column for it.
    Shared { ingested_at: Option<Cell<'static>>, segments: SegmentSender },
}

/// Why a row could not be encoded; a cell's `ToSql` refusing its column, which planning rules
/// out, so this names a bug rather than bad data.
type EncodeError = Box<dyn std::error::Error + Sync + Send>;

/// Why one row could not be encoded, before the writer names its table and record.
enum RowProblem {
    /// The value of the plan's `field`-th column does not fit it.
    Value {
        field: usize,
        reason: String,
    },
    Encode(EncodeError),
}

fn encode_error(table: &str, error: &EncodeError) -> LoadError {
    LoadError::Encode { table: table.to_owned(), reason: error.to_string() }
}

/// Rows in PostgreSQL's binary `COPY` format, encoded straight into one buffer that is sent in
/// large chunks: no vector of boxed cells per row (what `BinaryCopyInWriter` takes), and texts
/// borrowed from the plugin's rows rather than copied: the ETL's stream is bound by sluice's
/// own CPU (docs/performance.md).
struct CopyRows {
    types: Vec<Type>,
    buffer: BytesMut,
}

/// Send the buffer once it holds this much.
const COPY_CHUNK_BYTES: usize = 256 << 10;
/// The binary `COPY` header: signature, flags, header extension length.
pub(super) const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary `COPY` trailer, after the last row.
pub(super) const COPY_TRAILER: &[u8] = &(-1i16).to_be_bytes();

impl CopyRows {
    /// Rows of one `COPY` stream, header first; or, `headed` false, bare rows for the load's
    /// connection, which frames every segment itself.
    fn new(types: Vec<Type>, headed: bool) -> Self {
        let mut buffer = BytesMut::with_capacity(COPY_CHUNK_BYTES + (16 << 10));
        if headed {
            buffer.put_slice(COPY_HEADER);
        }
        CopyRows { types, buffer }
    }

    /// Starts a row of one cell per column; returns where it starts, for [`CopyRows::undo`].
    fn begin_row(&mut self) -> Result<usize, EncodeError> {
        let start = self.buffer.len();
        let count = i16::try_from(self.types.len()).map_err(|_| "a row has more than 32767 columns")?;
        self.buffer.put_i16(count);
        Ok(start)
    }

    /// Appends the row's cell for `column` (cells come in column order); returns its encoded
    /// bytes, length first.
    fn cell(&mut self, column: usize, cell: &Cell<'_>) -> Result<&[u8], EncodeError> {
        let ty = self.types.get(column).ok_or("a row has more cells than the COPY has columns")?;
        let length_at = self.buffer.len();
        self.buffer.put_i32(0);
        let length = match cell.to_sql_checked(ty, &mut self.buffer)? {
            IsNull::Yes => -1,
            IsNull::No => {
                i32::try_from(self.buffer.len() - length_at - 4).map_err(|_| "a value longer than 2 GiB")?
            }
        };
        self.buffer[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        Ok(&self.buffer[length_at..])
    }

    /// Takes back a row begun at `start` that cannot be finished.
    fn undo(&mut self, start: usize) {
        self.buffer.truncate(start);
    }

    /// The encoded rows to send, once there are enough of them.
    fn take(&mut self) -> Option<Bytes> {
        (self.buffer.len() >= COPY_CHUNK_BYTES).then(|| self.buffer.split().freeze())
    }

    /// Ends the stream: the trailer goes after the last row.
    fn finish(&mut self) -> Bytes {
        self.buffer.put_slice(COPY_TRAILER);
        self.buffer.split().freeze()
    }

    /// The rows encoded so far, without a trailer.
    fn rest(&mut self) -> Bytes {
        self.buffer.split().freeze()
    }
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
        let key_columns = plan.byte_comparable_key().unwrap_or_default();
        Ok(CopyWriter {
            rows_out: CopyRows::new(plan.copy_types(), true),
            keys: (!key_columns.is_empty()).then(DistinctKeys::new),
            key_columns,
            seen_keys: None,
            plan,
            target: CopyTarget::Staged { sink: Box::pin(sink), _client: client },
            rows: 0,
            declaration: None,
            positions: Vec::new(),
        })
    }

    /// A writer whose rows go straight into the plan's table, as segments of `COPY` that the
    /// load's connection runs inside its transaction ([`super::shared_copy::copy_segments`]),
    /// so they are written once and become visible with the load's commit. For an upsert the
    /// caller has made sure the table holds no rows to replace; the writer then refuses the
    /// first row whose key may repeat an earlier one ([`CopyWriter::write_new_key`]).
    ///
    /// `None` when the plan's rows cannot be copied that way (see
    /// [`TablePlan::table_copy_statement`]).
    pub fn open_shared(
        plan: Arc<TablePlan>,
        loaded_at: DateTime<Utc>,
        segments: SegmentSender,
    ) -> Option<Self> {
        plan.table_copy_statement()?;
        let ingested_at = plan.ingested_at_cell(loaded_at);
        let key_columns = if plan.is_upsert() { plan.byte_comparable_key()? } else { Vec::new() };
        let seen_keys = (!key_columns.is_empty()).then(|| SeenKeys { hashes: Default::default() });
        Some(CopyWriter {
            rows_out: CopyRows::new(plan.direct_copy_types(), false),
            plan,
            target: CopyTarget::Shared { ingested_at, segments },
            rows: 0,
            declaration: None,
            positions: Vec::new(),
            key_columns,
            keys: None,
            seen_keys,
        })
    }

    /// Stages one typed row as input record `record`'s row, with its `origin` in the table's
    /// lineage columns.
    ///
    /// # Errors
    /// [`LoadError::Value`] when a value does not fit its column; [`LoadError::Database`] when
    /// the copy fails.
    pub async fn write(&mut self, record: i64, row: &RowRef, origin: RowOrigin<'_>) -> Result<(), LoadError> {
        self.write_new_key(record, row, origin).await.map(|_| ())
    }

    /// As [`CopyWriter::write`], except that an upsert copied straight into its table does not
    /// write a row whose key hash it has seen before (the same key, or rarely another with the
    /// same hash) and answers `false`: from that row on, the rows must be staged, so the move
    /// keeps the last row per key. Always `true` for other writers.
    ///
    /// # Errors
    /// As [`CopyWriter::write`].
    pub async fn write_new_key(
        &mut self,
        record: i64,
        row: &RowRef,
        origin: RowOrigin<'_>,
    ) -> Result<bool, LoadError> {
        self.find_fields(row.batch().schema());
        let start = self.rows_out.begin_row().map_err(|error| encode_error(&self.plan.table, &error))?;
        let key_hash = match self.encode_row(record, row, origin) {
            Ok(hash) => hash,
            Err(problem) => {
                self.rows_out.undo(start);
                return Err(self.row_error(record, problem));
            }
        };
        if let Some(hash) = key_hash {
            if let Some(keys) = self.keys.as_mut() {
                keys.add(hash);
            }
            if let Some(seen) = self.seen_keys.as_mut()
                && !seen.insert(hash)
            {
                self.rows_out.undo(start);
                return Ok(false);
            }
        }
        if let Some(chunk) = self.rows_out.take() {
            self.send(chunk).await?;
        }
        self.rows += 1;
        Ok(true)
    }

    /// Names the table, the record and the field of a row that could not be encoded.
    fn row_error(&self, record: i64, problem: RowProblem) -> LoadError {
        match problem {
            RowProblem::Value { field, reason } => {
                let planned = self.plan.columns().get(field);
                LoadError::Value {
                    output: self.plan.output.clone(),
                    record,
                    field: planned.map(|p| p.field.clone()).unwrap_or_default(),
                    column: planned.map(|p| p.column.clone()).unwrap_or_default(),
                    table: self.plan.table.clone(),
                    reason,
                }
            }
            RowProblem::Encode(error) => encode_error(&self.plan.table, &error),
        }
    }

    /// Encodes the cells of one row after [`CopyRows::begin_row`]: the input position when
    /// staged, the fields, the lineage, then the load time when copied straight in. Returns
    /// the hash of the key cells' bytes when the writer tells keys apart.
    fn encode_row(
        &mut self,
        record: i64,
        row: &RowRef,
        origin: RowOrigin<'_>,
    ) -> Result<Option<u64>, RowProblem> {
        let mut column = 0;
        if let CopyTarget::Staged { .. } = self.target {
            self.rows_out.cell(column, &Cell::Int8(record)).map_err(RowProblem::Encode)?;
            column += 1;
        }
        let mut key_hash = (!self.key_columns.is_empty()).then(std::hash::DefaultHasher::new);
        for (field, (planned, position)) in self.plan.columns().iter().zip(&self.positions).enumerate() {
            let value = position.map_or(Value::Null, |at| row.value(at));
            let cell = planned.kind.cell(value).map_err(|reason| RowProblem::Value { field, reason })?;
            let encoded = self.rows_out.cell(column, &cell).map_err(RowProblem::Encode)?;
            if let Some(hasher) = key_hash.as_mut()
                && self.key_columns.contains(&field)
            {
                hasher.write(encoded);
            }
            column += 1;
        }
        for cell in self.plan.lineage_cells(origin) {
            self.rows_out.cell(column, &cell).map_err(RowProblem::Encode)?;
            column += 1;
        }
        if let CopyTarget::Shared { ingested_at: Some(loaded_at), .. } = &self.target {
            self.rows_out.cell(column, loaded_at).map_err(RowProblem::Encode)?;
        }
        Ok(key_hash.map(|hasher| hasher.finish()))
    }

    /// Whether the rows copied had keys all different from each other, as far as this writer
    /// could tell; false for a staged writer without a byte-comparable key. An upsert copied
    /// straight in wrote only keys it had not seen.
    fn keys_unique(&mut self) -> bool {
        self.seen_keys.is_some() || self.keys.as_mut().is_some_and(DistinctKeys::all_different)
    }

    async fn send(&mut self, chunk: Bytes) -> Result<(), LoadError> {
        match &mut self.target {
            CopyTarget::Staged { sink, .. } => sink
                .send(chunk)
                .await
                .map_err(DatabaseError::query(format!("copying rows into `{}`", self.plan.table)))?,
            CopyTarget::Shared { segments, .. } => segments.rows(chunk).await?,
        }
        Ok(())
    }

    /// Ends the `COPY`; returns the rows copied. Dropping the writer instead aborts the copy.
    ///
    /// # Errors
    /// [`LoadError::Database`] when the server rejects the copy, or the load's connection
    /// stopped taking rows.
    pub async fn finish(mut self) -> Result<Copied, LoadError> {
        let keys_unique = self.keys_unique();
        match &mut self.target {
            CopyTarget::Staged { sink, .. } => {
                let last = self.rows_out.finish();
                sink.send(last)
                    .await
                    .map_err(DatabaseError::query(format!("copying rows into `{}`", self.plan.table)))?;
                sink.as_mut()
                    .finish()
                    .await
                    .map_err(DatabaseError::query(format!("finishing the COPY for `{}`", self.plan.table)))?;
            }
            CopyTarget::Shared { segments, .. } => {
                let last = self.rows_out.rest();
                if !last.is_empty() {
                    segments.rows(last).await?;
                }
                segments.done().await?;
            }
        }
        Ok(Copied { rows: self.rows, keys_unique })
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

    /// Whether the rows go into a staging table, to be moved at the commit.
    pub fn is_staged(&self) -> bool {
        matches!(self.target, CopyTarget::Staged { .. })
    }

    /// Rows copied so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn plan(&self) -> &TablePlan {
        &self.plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_encoded_as_binary_copy_with_lengths_and_nulls() {
        let mut rows = CopyRows::new(vec![Type::INT8, Type::TEXT, Type::TEXT], true);
        let start = rows.begin_row().expect("row");
        assert_eq!(start, COPY_HEADER.len());
        rows.cell(0, &Cell::Int8(7)).expect("int8");
        let text = rows.cell(1, &Cell::Text("añ".into())).expect("text").to_vec();
        assert_eq!(text, [&3i32.to_be_bytes()[..], "añ".as_bytes()].concat(), "length, then the bytes");
        rows.cell(2, &Cell::Null).expect("null");
        let mut expected = COPY_HEADER.to_vec();
        expected.extend_from_slice(&3i16.to_be_bytes());
        expected.extend_from_slice(&8i32.to_be_bytes());
        expected.extend_from_slice(&7i64.to_be_bytes());
        expected.extend_from_slice(&text);
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        expected.extend_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(rows.finish().to_vec(), expected);
    }

    #[test]
    fn an_unfinished_row_is_taken_back_whole() {
        let mut rows = CopyRows::new(vec![Type::TEXT, Type::INT4], true);
        let first = rows.begin_row().expect("row");
        rows.cell(0, &Cell::Text("kept".into())).expect("text");
        rows.cell(1, &Cell::Int4(1)).expect("int4");
        let kept = rows.buffer.len();
        let second = rows.begin_row().expect("row");
        rows.cell(0, &Cell::Text("dropped".into())).expect("text");
        rows.undo(second);
        assert_eq!(rows.buffer.len(), kept);
        assert!(second > first);
        assert!(rows.cell(2, &Cell::Int4(1)).is_err(), "more cells than columns is an error, not a bad row");
    }

    #[test]
    fn chunks_are_sent_once_large_and_the_rest_with_the_trailer() {
        let mut rows = CopyRows::new(vec![Type::TEXT], true);
        assert!(rows.take().is_none());
        let long = "x".repeat(1024);
        let mut sent = 0;
        for _ in 0..300 {
            rows.begin_row().expect("row");
            rows.cell(0, &Cell::Text(long.as_str().into())).expect("text");
            if let Some(chunk) = rows.take() {
                sent += chunk.len();
            }
        }
        assert!(sent >= COPY_CHUNK_BYTES, "a chunk went out");
        let total = COPY_HEADER.len() + 300 * (2 + 4 + 1024) + 2;
        assert_eq!(sent + rows.finish().len(), total, "nothing lost between chunks");
    }

    #[test]
    fn keys_are_unique_unless_a_hash_repeats_anywhere() {
        let mut keys = DistinctKeys::new();
        for hash in [5, 1, 9, 2] {
            keys.add(hash);
        }
        assert!(keys.all_different());
        keys.add(9);
        keys.add(3);
        assert!(!keys.all_different(), "a repeat far from its first is still found");
        assert!(DistinctKeys::new().all_different(), "no rows, no repeats");
    }

    #[test]
    fn a_key_copied_straight_in_is_refused_the_second_time_and_every_key_past_the_limit() {
        let mut seen = SeenKeys { hashes: Default::default() };
        assert!(seen.insert(7) && seen.insert(8));
        assert!(!seen.insert(7), "a repeat");
        seen.hashes.extend(100..SeenKeys::LIMIT as u64 + 98);
        assert_eq!(seen.hashes.len(), SeenKeys::LIMIT);
        assert!(!seen.insert(1), "a new key past the limit cannot be told apart any more");
    }

    #[test]
    fn past_the_limit_keys_are_no_longer_counted() {
        let mut keys = DistinctKeys::new();
        keys.hashes.extend(0..DistinctKeys::LIMIT as u64);
        assert!(keys.all_different());
        keys.add(u64::MAX);
        assert!(!keys.counting && keys.hashes.is_empty(), "the hashes are let go");
        assert!(!keys.all_different());
    }
}
