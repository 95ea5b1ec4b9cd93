//! A Parquet table sink: one plugin output written as Hive-partitioned Parquet objects.
//!
//! Rows are gathered per *window* (the records of one Kafka partition between two commits, see
//! `pipeline::connector`): pushed as they come, encoded to columns at the end of each batch,
//! and finished into one object per Hive partition when the window closes. Every object of a
//! window is named after the window's first offset, so a replay after a crash writes the same
//! names again. [`TableSink`] is the sink's own interface; it also implements the connector's
//! [`WindowedSink`], whose windows wrap a [`TableWindow`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use futures::future::BoxFuture;
use tokio::sync::watch;

use super::config::TableSinkSettings;
use super::naming::object_key;
use super::partition::{PartitionError, Partitioner};
use super::rows::{RowEncoder, RowsError, TableRow};
use super::schema::{SchemaError, arrow_schema, with_lineage};
use super::writer::{ParquetFileWriter, WriterError};
use crate::kafka::SourceRecord;
use crate::object_store::ObjectStore;
use crate::object_store::retry::put_with_retry;
use crate::plugin::rows::RowRef;
use crate::plugin::schema::OutputSchema;
pub use crate::sink::windowed::RejectedRow;
use crate::sink::windowed::{Rotation, SinkError, SinkWindow, StoredWindow, WindowName, WindowedSink};

/// Why a table sink cannot be set up or a window cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("output `{output}`: {source}")]
    Schema {
        output: String,
        #[source]
        source: SchemaError,
    },
    #[error("output `{output}`: {source}")]
    Partition {
        output: String,
        #[source]
        source: PartitionError,
    },
    #[error("output `{output}`: {source}")]
    Rows {
        output: String,
        #[source]
        source: RowsError,
    },
    #[error("output `{output}`: {source}")]
    Writer {
        output: String,
        #[source]
        source: WriterError,
    },
}

/// One configured table: where it lives, its columns and how rows are partitioned. Cheap to
/// clone: each window the connector opens holds one.
#[derive(Debug, Clone)]
pub struct TableSink {
    /// The `<plugin>.<output>` it takes rows from.
    pub from: String,
    pub store: ObjectStore,
    pub prefix: String,
    pub settings: TableSinkSettings,
    encoder: Arc<RowEncoder>,
    partitioner: Arc<Partitioner>,
}

/// A row waiting to be encoded, with the coordinates of the record it came from.
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub row: RowRef,
    pub offset: i64,
    /// `name@version` of the plugin that made it.
    pub plugin_version: Arc<str>,
}

/// Rows of one window for one table: pending typed rows, then one open file per partition.
#[derive(Debug, Default)]
pub struct TableWindow {
    pending: Vec<PendingRow>,
    files: BTreeMap<String, ParquetFileWriter>,
    seen_keys: HashSet<Vec<u8>>,
    /// Rows accepted so far (pending or encoded).
    pub rows: usize,
    /// About the bytes of those rows' values: what the window holds in memory, at most.
    pub bytes: usize,
    /// Rows dropped because an earlier row of the window had the same key.
    pub duplicates: usize,
}

/// Rows encoded to columns but not yet in a file, so rows of records found dead in another
/// table can still be taken out.
#[derive(Debug)]
pub struct EncodedPending {
    batch: arrow::array::RecordBatch,
    offsets: Vec<i64>,
}

/// A finished object, ready to upload.
#[derive(Debug)]
pub struct FinishedObject {
    pub key: String,
    pub body: Vec<u8>,
    pub rows: usize,
}

impl TableSink {
    /// Sets up the table for `from` with the columns its plugin declares, plus the Kafka
    /// lineage columns.
    ///
    /// # Errors
    /// [`TableError`] when the columns cannot make a table or `partition_by` does not fit them.
    pub fn new(
        from: &str,
        settings: TableSinkSettings,
        store: ObjectStore,
        declared: Arc<OutputSchema>,
    ) -> Result<Self, TableError> {
        let schema_error = |source| TableError::Schema { output: from.to_owned(), source };
        let arrow = arrow_schema(&declared).map_err(schema_error)?;
        let schema: SchemaRef = Arc::new(with_lineage(&arrow).map_err(schema_error)?);
        let encoder = RowEncoder::new(schema.clone(), declared)
            .map_err(|source| TableError::Rows { output: from.to_owned(), source })?;
        let partitioner = Partitioner::new(schema, &settings.partition_by)
            .map_err(|source| TableError::Partition { output: from.to_owned(), source })?;
        let prefix = settings.location.prefix().to_owned();
        Ok(TableSink {
            from: from.to_owned(),
            store,
            prefix,
            settings,
            encoder: Arc::new(encoder),
            partitioner: Arc::new(partitioner),
        })
    }

    /// The full schema of the table's rows (partition columns and lineage included).
    pub fn schema(&self) -> &SchemaRef {
        self.encoder.schema()
    }

    /// Adds a row to `window`, unless the sink dedupes by key and the window already has that
    /// key; returns whether the row was taken.
    pub fn push(&self, window: &mut TableWindow, row: RowRef, offset: i64, plugin_version: Arc<str>) -> bool {
        if self.settings.dedupe_by_key
            && let Some(key) = row.key()
            && !window.seen_keys.insert(key.to_vec())
        {
            window.duplicates += 1;
            return false;
        }
        window.rows += 1;
        window.bytes += row.batch().bytes_per_row();
        window.pending.push(PendingRow { row, offset, plugin_version });
        true
    }

    /// Encodes the window's pending rows; rows that do not fit the schema come back as
    /// rejected (their source records become dead letters).
    ///
    /// # Errors
    /// [`TableError::Rows`] when the batch cannot be built at all (a bug, not bad data).
    pub fn encode_pending(
        &self,
        window: &mut TableWindow,
        topic: &str,
        partition: i32,
    ) -> Result<(Option<EncodedPending>, Vec<RejectedRow>), TableError> {
        if window.pending.is_empty() {
            return Ok((None, Vec::new()));
        }
        let pending = std::mem::take(&mut window.pending);
        let records: Vec<TableRow<'_>> = pending
            .iter()
            .map(|row| TableRow {
                row: &row.row,
                topic,
                partition,
                offset: row.offset,
                plugin_version: &row.plugin_version,
            })
            .collect();
        let encoded = self
            .encoder
            .encode(&records)
            .map_err(|source| TableError::Rows { output: self.from.clone(), source })?;
        let rejected: Vec<RejectedRow> = encoded
            .rejected
            .iter()
            .filter_map(|error| {
                pending.get(error.index).map(|row| RejectedRow {
                    offset: row.offset,
                    reason: format!("table `{}` refused a row: {}", self.from, error.reason),
                    plugin_version: row.plugin_version.clone(),
                })
            })
            .collect();
        let rejected_positions: HashSet<usize> = encoded.rejected.iter().map(|e| e.index).collect();
        let offsets: Vec<i64> = pending
            .iter()
            .enumerate()
            .filter(|(position, _)| !rejected_positions.contains(position))
            .map(|(_, row)| row.offset)
            .collect();
        window.rows -= rejected.len();
        Ok((Some(EncodedPending { batch: encoded.batch, offsets }), rejected))
    }

    /// Writes encoded rows into the window's files, leaving out rows whose source record is
    /// in `dead` (it goes to the dead letters whole).
    ///
    /// # Errors
    /// [`TableError`] when Arrow or Parquet cannot take the rows (a bug, not bad data).
    pub fn write_encoded(
        &self,
        window: &mut TableWindow,
        encoded: EncodedPending,
        dead: &HashSet<i64>,
    ) -> Result<(), TableError> {
        let mut batch = encoded.batch;
        if !dead.is_empty() {
            let keep: BooleanArray =
                encoded.offsets.iter().map(|offset| Some(!dead.contains(offset))).collect();
            let dropped = keep.false_count();
            batch = filter_record_batch(&batch, &keep).map_err(|source| TableError::Rows {
                output: self.from.clone(),
                source: RowsError::Batch(source),
            })?;
            window.rows -= dropped;
        }
        let parts = self
            .partitioner
            .split(&batch)
            .map_err(|source| TableError::Partition { output: self.from.clone(), source })?;
        for part in parts {
            let file = match window.files.entry(part.path) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => entry.insert(
                    ParquetFileWriter::new(self.partitioner.data_schema().clone())
                        .map_err(|source| TableError::Writer { output: self.from.clone(), source })?,
                ),
            };
            file.write(&part.batch)
                .map_err(|source| TableError::Writer { output: self.from.clone(), source })?;
        }
        Ok(())
    }

    /// Closes the window's files: one object per partition, named after `first_offset`.
    /// `suffix` tells objects written by `sluice sweep` apart from the connector's.
    ///
    /// # Errors
    /// [`TableError::Writer`] when a file cannot be finished.
    pub fn finish(
        &self,
        window: TableWindow,
        topic: &str,
        partition: i32,
        first_offset: i64,
        suffix: &str,
    ) -> Result<Vec<FinishedObject>, TableError> {
        let mut objects = Vec::with_capacity(window.files.len());
        for (path, file) in window.files {
            let rows = file.rows();
            let body =
                file.finish().map_err(|source| TableError::Writer { output: self.from.clone(), source })?;
            let mut key = object_key(&self.prefix, &path, topic, partition, first_offset);
            if !suffix.is_empty() {
                key = format!("{}{suffix}.parquet", key.trim_end_matches(".parquet"));
            }
            objects.push(FinishedObject { key, body, rows });
        }
        Ok(objects)
    }
}

impl WindowedSink for TableSink {
    fn from(&self) -> &str {
        &self.from
    }

    fn rotation(&self) -> Rotation {
        Rotation {
            records: self.settings.rotate_records,
            bytes: self.settings.rotate_bytes,
            age: Duration::from_millis(self.settings.rotate_ms),
        }
    }

    fn open(&self) -> Box<dyn SinkWindow> {
        Box::new(ParquetWindow { sink: self.clone(), window: TableWindow::default(), encoded: None })
    }
}

/// A window of a [`TableSink`] as the connector drives it.
struct ParquetWindow {
    sink: TableSink,
    window: TableWindow,
    /// The last batch's rows, encoded but not yet in the files.
    encoded: Option<EncodedPending>,
}

impl ParquetWindow {
    fn error(&self, error: impl std::fmt::Display) -> SinkError {
        SinkError::Write { from: self.sink.from.clone(), problem: error.to_string() }
    }
}

impl SinkWindow for ParquetWindow {
    fn push(&mut self, row: RowRef, source: &SourceRecord, plugin_version: Arc<str>) -> bool {
        self.sink.push(&mut self.window, row, source.offset, plugin_version)
    }

    fn rows(&self) -> usize {
        self.window.rows
    }

    fn bytes(&self) -> usize {
        self.window.bytes
    }

    fn duplicates(&self) -> usize {
        self.window.duplicates
    }

    fn encode(&mut self, topic: &str, partition: i32) -> Result<Vec<RejectedRow>, SinkError> {
        let (encoded, rejected) = self
            .sink
            .encode_pending(&mut self.window, topic, partition)
            .map_err(|error| self.error(error))?;
        self.encoded = encoded;
        Ok(rejected)
    }

    fn settle(&mut self, dead: &HashSet<i64>) -> Result<(), SinkError> {
        let Some(encoded) = self.encoded.take() else { return Ok(()) };
        self.sink.write_encoded(&mut self.window, encoded, dead).map_err(|error| self.error(error))
    }

    fn store<'a>(
        self: Box<Self>,
        name: WindowName<'a>,
        shutdown: &'a watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<StoredWindow, SinkError>> {
        Box::pin(async move {
            let ParquetWindow { sink, window, .. } = *self;
            let objects = sink
                .finish(window, name.topic, name.partition, name.first_offset, name.suffix)
                .map_err(|error| SinkError::Write { from: sink.from.clone(), problem: error.to_string() })?;
            let stored = StoredWindow {
                rows: objects.iter().map(|object| object.rows).sum(),
                objects: objects.len(),
                bytes: objects.iter().map(|object| object.body.len()).sum(),
            };
            let store = &sink.store;
            let puts = futures::future::join_all(objects.into_iter().map(|object| async move {
                put_with_retry(store, &object.key, object.body, shutdown).await
            }))
            .await;
            if puts.iter().any(|stored| !stored) {
                return Err(SinkError::Interrupted { from: sink.from.clone() });
            }
            Ok(stored)
        })
    }
}
