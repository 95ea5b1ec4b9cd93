//! The plugin runtime: compiles WebAssembly components once, keeps them ready to instantiate,
//! and runs batches through them inside per-call time and memory limits.
//!
//! An instance serves many batches of the same pipeline step while its calls succeed; a trap,
//! a timeout or a memory bomb drops it with its `Store`, so none can leave state behind for the
//! next batch. Reloads swap the ready-to-run component atomically; calls already running
//! finish on the version they started with, and the old version's idle instances go with it.

mod bindings;
mod cache;
pub mod canary;
pub mod compare;
mod contract;
mod engine;
mod error;
mod instances;
mod json_rows;
pub mod limits;
mod loaded;
mod registry;
pub mod rows;
mod sandbox;
pub mod schema;
pub mod shadow;

pub use bindings::v0_3::{Header, RecordIn};
pub use cache::{CompileCache, content_hash};
pub use contract::{BatchResult, ContractVersion, Failure, PluginInfo};
pub use engine::{EngineTuning, PluginEngine};
pub use error::PluginError;
#[cfg(test)]
pub(crate) use json_rows::push_json_row;
pub use limits::PluginLimits;
pub use loaded::{LoadedPlugin, PluginCall};
pub use registry::{
    CANARY_FILE_SUFFIX, PluginHandle, PluginRegistry, PluginStats, ROLLED_BACK_FILE_SUFFIX, Rejection,
    SHADOW_FILE_SUFFIX, Transformed, canary_file_plugin, is_candidate_file, shadow_file_plugin,
};
pub use shadow::{SampleSink, Shadow, ShadowCounts, ShadowSample};

/// The WIT package whose `transformer` interface plugins export.
pub const WIT_PACKAGE: &str = "sluice:transform";
