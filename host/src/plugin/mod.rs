//! The plugin runtime: compiles WebAssembly components once, keeps them ready to instantiate,
//! and runs batches through them inside per-call time and memory limits.
//!
//! An instance serves many batches of the same pipeline step while its calls succeed; a trap,
//! a timeout or a memory bomb drops it with its `Store`, so none can leave state behind for the
//! next batch. Reloads swap the ready-to-run component atomically; calls already running
//! finish on the version they started with, and the old version's idle instances go with it.

mod bindings;
mod cache;
mod engine;
mod error;
mod instances;
pub mod limits;
mod loaded;
mod registry;
mod sandbox;

pub use bindings::{BatchResult, Failure, Header, OutputInfo, PluginInfo, RecordIn, RecordOut};
pub use cache::{CompileCache, content_hash};
pub use engine::PluginEngine;
pub use error::PluginError;
pub use limits::PluginLimits;
pub use loaded::{LoadedPlugin, PluginCall};
pub use registry::{PluginHandle, PluginRegistry, PluginStats, Rejection, Transformed};

/// The WIT package version of `wit/transform.wit` that this host implements.
pub const SUPPORTED_WIT_VERSION: &str = "0.2.0";
/// The WIT package whose `transformer` interface plugins export.
pub const WIT_PACKAGE: &str = "sluice:transform";
