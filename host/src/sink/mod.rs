//! Sinks: where a pipeline's named outputs are written.

pub mod dead_letter;
pub mod parquet;
pub mod postgres;
pub mod sendgrid;
pub mod table;
pub mod window_stem;
