//! One Parquet file built in memory.
//!
//! A file is uploaded whole once it is finished, and the consumer's offsets are committed only
//! after that, so nothing is written to disk on the way: the bytes stay in memory, bounded by
//! the connector's window limits (`pipeline::connector`), which decide when files close.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

/// Bytes at which a data page is closed and compressed.
const PAGE_BYTES: usize = 128 << 10;

/// How files are encoded.
///
/// Pages are compressed with Snappy, which Athena, DuckDB and Spark all read. zstd level 1
/// makes files smaller (89 MB against 146 MB for 1M bench events), but parquet's zstd codec
/// allocates a decompression context (about 120 KiB) for every column of every open file even
/// when only writing: with one file per Hive partition per Kafka partition open at once, that
/// was 177 MB of the connector's 448 MB heap peak (heaptrack, 1M-event connector run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// A row group ends after this many rows ...
    pub row_group_rows: usize,
    /// ... or once its encoded size reaches this many bytes, so a reader can fetch and decode
    /// one row group at a time without holding much more than this.
    pub row_group_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { row_group_rows: 1 << 20, row_group_bytes: 64 << 20 }
    }
}

/// Why a file could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("invalid Parquet writer options: {0}")]
    Options(String),
    #[error("cannot encode Parquet: {0}")]
    Parquet(#[from] ParquetError),
}

/// Builds one Parquet file in memory from batches of one schema.
pub struct ParquetFileWriter {
    writer: ArrowWriter<Vec<u8>>,
    rows: usize,
}

impl std::fmt::Debug for ParquetFileWriter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ParquetFileWriter")
            .field("rows", &self.rows)
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl ParquetFileWriter {
    /// A writer for a file of `schema` (the partition's data schema) with default options.
    ///
    /// # Errors
    ///
    /// [`WriterError::Parquet`] when `schema` has a type Parquet cannot store.
    pub fn new(schema: SchemaRef) -> Result<Self, WriterError> {
        Self::with_options(schema, WriterOptions::default())
    }

    /// A writer for a file of `schema` encoded as `options` say.
    ///
    /// # Errors
    ///
    /// [`WriterError::Options`] for a zero row group limit;
    /// [`WriterError::Parquet`] when `schema` has a type Parquet cannot store.
    pub fn with_options(schema: SchemaRef, options: WriterOptions) -> Result<Self, WriterError> {
        if options.row_group_rows == 0 || options.row_group_bytes == 0 {
            return Err(WriterError::Options("row group limits must be above zero".to_owned()));
        }
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(options.row_group_rows))
            .set_max_row_group_bytes(Some(options.row_group_bytes))
            // A page stays uncompressed in memory until it closes, and a window keeps one file
            // per Hive partition open (dozens of columns each): small pages keep what a
            // window holds close to its compressed size. Snappy works in 64 KiB blocks, so
            // this costs the ratio nothing.
            .set_data_page_size_limit(PAGE_BYTES)
            // No dictionaries. Each dictionary-encoded column of an open file starts with a
            // 4096-slot hash table, whatever its rows, and a window keeps a file per Hive
            // partition open: on the 1M-event bench that was 42 MB of interners across about
            // 1,800 column writers, most of them for files of a few thousand rows. Without
            // them the connector peaked at 280–305 MB instead of 362–397 MB, ran as fast, and
            // its files were 2% larger (143.9 MB against 140.8 MB): Snappy already shrinks
            // repeated values (docs/performance.md, the connector's peak RSS).
            .set_dictionary_enabled(false)
            .build();
        let writer = ArrowWriter::try_new(Vec::new(), schema, Some(properties))?;
        Ok(ParquetFileWriter { writer, rows: 0 })
    }

    /// Appends the rows of `batch`.
    ///
    /// # Errors
    ///
    /// [`WriterError::Parquet`] when `batch` does not have the file's schema.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), WriterError> {
        self.writer.write(batch)?;
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The file's size so far: finished row groups plus the encoder's estimate for the open
    /// one (the footer, a few KiB at most, is not counted).
    pub fn bytes(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    /// Closes the file and returns its bytes.
    ///
    /// # Errors
    ///
    /// [`WriterError::Parquet`] when the last row group or the footer cannot be encoded.
    pub fn finish(self) -> Result<Vec<u8>, WriterError> {
        Ok(self.writer.into_inner()?)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::Arc;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, Int64Type, TimestampMillisecondType};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::super::partition::Partitioner;
    use super::super::rows::tests::{declared, typed_rows};
    use super::super::rows::{RowEncoder, TableRow};
    use super::super::schema::{arrow_schema, parse_output_schema, with_lineage};
    use super::*;

    const SCHEMA: &str = r#"{"fields":[
        {"name":"dt","type":"string","nullable":false},
        {"name":"event","type":"string","nullable":false},
        {"name":"email","type":"string","nullable":false},
        {"name":"tls","type":"int32","nullable":true},
        {"name":"event_time","type":"timestamp-ms","nullable":false},
        {"name":"categories","type":"list-string","nullable":false},
        {"name":"custom_args","type":"json","nullable":true}
    ]}"#;

    const RECORDS: [&str; 4] = [
        r#"{"dt":"2024-05-01","event":"open","email":"a@example.com","tls":1,"event_time":1714521600000,"categories":["x","y"],"custom_args":{"request_id":"r-1"}}"#,
        r#"{"dt":"2024-05-01","event":"open","email":"b@example.com","event_time":1714521600001,"categories":[],"custom_args":null}"#,
        r#"{"dt":"2024-05-01","event":"open","tls":3,"event_time":1,"categories":[]}"#,
        r#"{"dt":"2024-05-01","event":"click","email":"d@example.com","tls":0,"event_time":1714521600002,"categories":["z"],"custom_args":[1,{"k":"v"}]}"#,
    ];

    fn read_back(bytes: Vec<u8>) -> Vec<RecordBatch> {
        // parquet reads from a file or `bytes::Bytes`; a temporary file avoids another crate.
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn compression_of(bytes: &[u8]) -> Vec<Compression> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let row_group = reader.metadata().row_group(0);
        row_group.columns().iter().map(|column| column.compression()).collect()
    }

    /// Whether each column's first row group uses a dictionary, by column path.
    fn dictionary_encoded(bytes: &[u8]) -> std::collections::BTreeMap<String, bool> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let row_group = reader.metadata().row_group(0);
        row_group
            .columns()
            .iter()
            .map(|column| (column.column_path().string(), column.dictionary_page_offset().is_some()))
            .collect()
    }

    #[test]
    fn a_batch_round_trips_through_a_file_with_nulls_lists_and_json() {
        let declared = declared(SCHEMA);
        let schema = Arc::new(with_lineage(&arrow_schema(&declared).unwrap()).unwrap());
        let encoder = RowEncoder::new(schema.clone(), declared.clone()).unwrap();
        let rows = typed_rows(&declared, &RECORDS);
        let records: Vec<TableRow<'_>> = rows
            .iter()
            .enumerate()
            .map(|(index, row)| TableRow {
                row,
                topic: "sendgrid-events",
                partition: 2,
                offset: 500 + index as i64,
                plugin_version: "1.0.0",
            })
            .collect();
        let encoded = encoder.encode(&records).unwrap();
        assert_eq!(encoded.rejected.len(), 1);
        assert_eq!(encoded.rejected[0].index, 2);

        let partitioner = Partitioner::new(schema, &["dt".to_owned(), "event".to_owned()]).unwrap();
        let groups = partitioner.split(&encoded.batch).unwrap();
        assert_eq!(groups[0].path, "dt=2024-05-01/event=open/");

        let mut writer = ParquetFileWriter::new(partitioner.data_schema().clone()).unwrap();
        // A new file holds only the `PAR1` magic.
        assert_eq!((writer.rows(), writer.bytes()), (0, 4));
        writer.write(&groups[0].batch).unwrap();
        assert_eq!(writer.rows(), 2);
        assert!(writer.bytes() > 4);
        let bytes = writer.finish().unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        assert!(compression_of(&bytes).iter().all(|codec| *codec == Compression::SNAPPY));
        let dictionary = dictionary_encoded(&bytes);
        assert!(!dictionary.is_empty() && dictionary.values().all(|used| !used), "{dictionary:?}");

        let batches = read_back(bytes);
        assert_eq!(batches.len(), 1);
        let read = &batches[0];
        assert_eq!(read.schema_ref(), partitioner.data_schema());
        assert_eq!(read, &groups[0].batch);

        let column = |name: &str| read.column_by_name(name).unwrap().clone();
        let emails: Vec<_> = column("email").as_string::<i32>().iter().flatten().map(str::to_owned).collect();
        assert_eq!(emails, ["a@example.com", "b@example.com"]);
        assert_eq!(column("tls").as_primitive::<Int32Type>().value(0), 1);
        assert!(column("tls").is_null(1));
        let times = column("event_time");
        assert_eq!(
            times.as_primitive::<TimestampMillisecondType>().values(),
            &[1_714_521_600_000, 1_714_521_600_001]
        );
        let categories = column("categories");
        let categories = categories.as_list::<i32>();
        assert_eq!(categories.value(0).as_string::<i32>().iter().flatten().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(categories.value(1).len(), 0);
        let custom_args = column("custom_args");
        assert_eq!(custom_args.as_string::<i32>().value(0), r#"{"request_id":"r-1"}"#);
        assert!(custom_args.is_null(1));
        assert_eq!(column("kafka_offset").as_primitive::<Int64Type>().values(), &[500, 501]);
        assert!(read.column_by_name("dt").is_none());
    }

    #[test]
    fn row_groups_close_at_the_row_limit() {
        let declared = declared(SCHEMA);
        let schema = Arc::new(parse_output_schema(SCHEMA).unwrap());
        let encoder = RowEncoder::new(schema.clone(), declared.clone()).unwrap();
        let rows = typed_rows(&declared, &[RECORDS[0], RECORDS[1], RECORDS[3]]);
        let records: Vec<TableRow<'_>> = rows
            .iter()
            .map(|row| TableRow { row, topic: "t", partition: 0, offset: 0, plugin_version: "1.0.0" })
            .collect();
        let batch = encoder.encode(&records).unwrap().batch;
        let options = WriterOptions { row_group_rows: 2, ..WriterOptions::default() };
        let mut writer = ParquetFileWriter::with_options(schema, options).unwrap();
        writer.write(&batch).unwrap();
        writer.write(&batch).unwrap();
        assert_eq!(writer.rows(), 6);
        let bytes = writer.finish().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 3);
        assert_eq!(read_back(bytes).iter().map(RecordBatch::num_rows).sum::<usize>(), 6);
    }

    #[test]
    fn bad_options_and_foreign_batches_are_errors() {
        let schema = Arc::new(parse_output_schema(SCHEMA).unwrap());
        let zero = WriterOptions { row_group_rows: 0, ..WriterOptions::default() };
        assert!(matches!(
            ParquetFileWriter::with_options(schema.clone(), zero),
            Err(WriterError::Options(_))
        ));
        let mut writer = ParquetFileWriter::new(schema).unwrap();
        let other = arrow::array::RecordBatch::try_from_iter([(
            "n",
            Arc::new(arrow::array::Int32Array::from(vec![1])) as arrow::array::ArrayRef,
        )])
        .unwrap();
        assert!(writer.write(&other).is_err());
    }
}
