//! Parquet encoding for the table sinks: plugin output records in, Hive-partitioned Parquet
//! file bytes and their object keys out.
//!
//! Pure and synchronous, with no storage or Kafka in it, so every step can be tested on its
//! own; the S3 and local sinks drive it. The steps, in data order:
//! [`schema`] (the plugin's declared columns) → [`rows`] (records to a batch, bad records set
//! aside for the dead letters) → [`partition`] (rows grouped by `partition_by`) → [`writer`]
//! (one file per partition, rotated by records, bytes and age) → [`naming`] (the file's key).
//! [`athena`] renders the table definition matching those files.

pub mod athena;
pub mod naming;
pub mod partition;
pub mod rows;
pub mod schema;
pub mod writer;
