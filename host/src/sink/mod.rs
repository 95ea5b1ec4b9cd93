//! Sinks: where a pipeline's named outputs are written.

pub mod parquet;
pub mod sendgrid;
