//! The `parquet-s3` and `parquet-local` sinks' settings, and what builds them.

use std::path::PathBuf;

use serde::Deserialize;

use super::sink::TableSink;
use crate::config::StoreLocation;
use crate::config::defaults::{default_rotate_bytes, default_rotate_ms, default_rotate_records};
use crate::sink::output_schema;
use crate::sink::windowed::{BuildContext, WindowedSink, WindowedSinkError};

/// `kind = "parquet-s3"`: Hive-partitioned Parquet objects in S3.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetS3Settings {
    pub bucket: String,
    pub prefix: String,
    #[serde(default)]
    pub partition_by: Vec<String>,
    #[serde(default = "default_rotate_records")]
    pub rotate_records: usize,
    #[serde(default = "default_rotate_bytes")]
    pub rotate_bytes: usize,
    #[serde(default = "default_rotate_ms")]
    pub rotate_ms: u64,
    /// Writes a row once per file window when several rows carry the same record key
    /// (a plugin keys rows by their identity, e.g. an event id the sender may repeat).
    #[serde(default)]
    pub dedupe_by_key: bool,
}

/// `kind = "parquet-local"`: the same layout in a local directory, for the quick start.
///
/// It repeats `parquet-s3`'s table keys rather than flattening a shared struct: serde cannot
/// refuse unknown keys through `flatten`, and a misspelt key must be an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetLocalSettings {
    pub dir: PathBuf,
    #[serde(default)]
    pub partition_by: Vec<String>,
    #[serde(default = "default_rotate_records")]
    pub rotate_records: usize,
    #[serde(default = "default_rotate_bytes")]
    pub rotate_bytes: usize,
    #[serde(default = "default_rotate_ms")]
    pub rotate_ms: u64,
    /// As for `parquet-s3`.
    #[serde(default)]
    pub dedupe_by_key: bool,
}

/// The settings of a Parquet sink, whichever store it writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSinkSettings {
    pub location: StoreLocation,
    pub partition_by: Vec<String>,
    pub rotate_records: usize,
    pub rotate_bytes: usize,
    pub rotate_ms: u64,
    pub dedupe_by_key: bool,
}

impl ParquetS3Settings {
    pub fn table(&self) -> TableSinkSettings {
        TableSinkSettings {
            location: StoreLocation::S3 { bucket: self.bucket.clone(), prefix: self.prefix.clone() },
            partition_by: self.partition_by.clone(),
            rotate_records: self.rotate_records,
            rotate_bytes: self.rotate_bytes,
            rotate_ms: self.rotate_ms,
            dedupe_by_key: self.dedupe_by_key,
        }
    }
}

impl ParquetLocalSettings {
    pub fn table(&self) -> TableSinkSettings {
        TableSinkSettings {
            location: StoreLocation::Local { dir: self.dir.clone() },
            partition_by: self.partition_by.clone(),
            rotate_records: self.rotate_records,
            rotate_bytes: self.rotate_bytes,
            rotate_ms: self.rotate_ms,
            dedupe_by_key: self.dedupe_by_key,
        }
    }
}

/// The table sink for `from` with the columns its plugin declares.
///
/// # Errors
/// [`WindowedSinkError`] when the output is not declared, its columns cannot make a table, or
/// the store cannot be reached.
pub async fn build_windowed(
    from: &str,
    settings: TableSinkSettings,
    context: &BuildContext<'_>,
) -> Result<Box<dyn WindowedSink>, WindowedSinkError> {
    let schema = output_schema(context.registry, from)
        .ok_or_else(|| WindowedSinkError::UnknownOutput { from: from.to_owned() })?;
    let store = context
        .stores
        .store(&settings.location)
        .await
        .map_err(|source| WindowedSinkError::Store { from: from.to_owned(), source })?;
    let table = TableSink::new(from, settings, store, schema)
        .map_err(|error| WindowedSinkError::Setup { from: from.to_owned(), problem: error.to_string() })?;
    Ok(Box::new(table))
}
