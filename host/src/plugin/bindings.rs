//! Host-side bindings generated from `wit/transform.wit`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
});

pub use self::exports::sluice::transform::transformer::{BatchResult, PluginInfo};
pub use self::sluice::transform::types::{Failure, Header, OutputInfo, RecordIn, RecordOut};

/// The `types` interface declares only records, so the host has nothing to implement for it.
impl self::sluice::transform::types::Host for super::sandbox::SandboxState {}
