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
