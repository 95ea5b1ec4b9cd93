//! Reading back what a Parquet table sink wrote to S3, as a query engine would: every object
//! under the table's prefix, Hive partition values taken from the path.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use arrow::json::writer::{JsonArray, WriterBuilder};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value};

use crate::{HarnessError, S3};

/// One row of a table, its columns and partition values as JSON, and the object it came from.
#[derive(Debug, Clone)]
pub struct TableRow {
    pub object: String,
    pub columns: Map<String, Value>,
}

impl TableRow {
    /// A column's text, for string columns.
    pub fn text(&self, column: &str) -> Option<&str> {
        self.columns.get(column).and_then(Value::as_str)
    }
}

/// The Parquet object keys under `prefix` (markers and other files left out), sorted.
///
/// # Errors
/// If S3 cannot be listed.
pub async fn table_objects(s3: &S3, bucket: &str, prefix: &str) -> Result<Vec<String>, HarnessError> {
    let mut keys: Vec<String> =
        s3.list_keys(bucket, prefix).await?.into_iter().filter(|key| key.ends_with(".parquet")).collect();
    keys.sort();
    Ok(keys)
}

/// Every row of every Parquet object under `prefix`.
///
/// # Errors
/// If an object cannot be fetched or is not Parquet.
pub async fn read_table(s3: &S3, bucket: &str, prefix: &str) -> Result<Vec<TableRow>, HarnessError> {
    let mut rows = Vec::new();
    for key in table_objects(s3, bucket, prefix).await? {
        let body = s3.get_object(bucket, &key).await?;
        rows.extend(decode_object(&key, body)?);
    }
    Ok(rows)
}

/// Every row of every Parquet file under a local directory (a `parquet-local` sink).
///
/// # Errors
/// If a file cannot be read or is not Parquet.
pub fn read_local_table(dir: &std::path::Path) -> Result<Vec<TableRow>, HarnessError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut rows = Vec::new();
    for path in files {
        let key = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().into_owned();
        let body = std::fs::read(&path).map_err(|error| HarnessError::Table(format!("{key}: {error}")))?;
        rows.extend(decode_object(&key, body)?);
    }
    Ok(rows)
}

/// The rows of one Parquet object, with the partition values its key holds.
fn decode_object(key: &str, body: Vec<u8>) -> Result<Vec<TableRow>, HarnessError> {
    let mut rows = Vec::new();
    let partitions: Vec<(String, String)> = key
        .split('/')
        .filter_map(|segment| segment.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body))
        .and_then(|builder| builder.build())
        .map_err(|error| HarnessError::Table(format!("{key} is not Parquet: {error}")))?;
    for batch in reader {
        let batch = batch.map_err(|error| HarnessError::Table(format!("{key}: {error}")))?;
        let batch =
            timestamps_as_millis(&batch).map_err(|error| HarnessError::Table(format!("{key}: {error}")))?;
        let mut writer = WriterBuilder::new().with_explicit_nulls(true).build::<_, JsonArray>(Vec::new());
        writer.write(&batch).map_err(|error| HarnessError::Table(format!("{key}: {error}")))?;
        writer.finish().map_err(|error| HarnessError::Table(format!("{key}: {error}")))?;
        let json: Vec<Map<String, Value>> = serde_json::from_slice(&writer.into_inner())
            .map_err(|error| HarnessError::Table(format!("{key}: {error}")))?;
        for mut columns in json {
            for (name, value) in &partitions {
                columns.insert(name.clone(), Value::String(value.clone()));
            }
            rows.push(TableRow { object: key.to_owned(), columns });
        }
    }
    Ok(rows)
}

/// Timestamp columns as their integer milliseconds: the JSON writer cannot print a named time
/// zone without chrono-tz, and tests compare epoch values anyway.
fn timestamps_as_millis(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if matches!(field.data_type(), DataType::Timestamp(_, _)) {
            columns.push(cast(column, &DataType::Int64)?);
            fields.push(Field::new(field.name(), DataType::Int64, field.is_nullable()));
        } else {
            columns.push(column.clone());
            fields.push(field.as_ref().clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}
