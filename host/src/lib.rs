//! Sluice: a host that moves records between HTTP, Kafka, S3 and PostgreSQL and hands every
//! business decision to a WebAssembly component (see `wit/transform.wit`).
//!
//! The modules follow the data path: `http` receives, `plugin` transforms; `config` describes
//! how pipelines connect them; `telemetry` counts what passes; `cli` is the command line.

pub mod cli;
pub mod config;
pub mod database;
pub mod http;
pub mod job;
pub mod kafka;
pub mod object_store;
pub mod pipeline;
pub mod plugin;
pub mod sink;
pub mod source;
pub mod telemetry;
