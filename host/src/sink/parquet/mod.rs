//! The `parquet-s3` and `parquet-local` sinks: plugin output rows in, Hive-partitioned Parquet
//! objects in S3 or a local directory out.
//!
//! [`config`] holds the settings and builds the sink; [`sink`] gathers a window's rows and
//! stores its files. The encoding is pure and synchronous, with no storage or Kafka in it, so
//! every step can be tested on its own. The steps, in data order: [`schema`] (the plugin's
//! declared columns) → [`rows`] (rows to an Arrow batch, rows that do not fit set aside for
//! the dead letters) → [`partition`] (rows grouped by `partition_by`) → [`writer`] (one file
//! per partition) → [`naming`] (the file's key). [`athena`] renders the table definition
//! matching those files.

pub mod athena;
pub mod config;
pub mod naming;
pub mod partition;
pub mod rows;
pub mod schema;
pub mod sink;
pub mod text_buffers;
pub mod writer;

pub use config::{ParquetLocalSettings, ParquetS3Settings, TableSinkSettings, build_windowed};

/// A plugin output schema with one column of every type, shared by the module tests.
#[cfg(test)]
mod test_schema {
    pub const EVERY_TYPE: &str = r#"{"fields":[
        {"name":"dt","type":"string","nullable":false},
        {"name":"event","type":"string","nullable":false},
        {"name":"tls","type":"int32","nullable":true},
        {"name":"asm_group_id","type":"int64","nullable":true},
        {"name":"score","type":"float64","nullable":true},
        {"name":"machine_open","type":"bool","nullable":true},
        {"name":"event_time","type":"timestamp-ms","nullable":false},
        {"name":"categories","type":"list-string","nullable":false},
        {"name":"custom_args","type":"json","nullable":true}
    ]}"#;
}
