//! Host-side bindings generated from `wit/transform.wit`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
});

pub use exports::sluice::transform::transformer::{BatchResult, PluginInfo};
pub use sluice::transform::types::{Failure, Header, OutputInfo, RecordIn, RecordOut};

/// The `types` interface declares only records, so the host has nothing to implement for it.
impl sluice::transform::types::Host for super::sandbox::SandboxState {}
