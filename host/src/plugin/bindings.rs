//! Host-side bindings, one module per contract version the host runs: `v0_3` from
//! `wit/transform.wit`, `v0_2` from `wit/0.2.0/transform.wit`. Everything past the plugin
//! runtime sees only the host's own types (see [`super::contract`]).

/// The current contract, `sluice:transform@0.3.0`.
pub mod v0_3 {
    wasmtime::component::bindgen!({
        path: "../wit/transform.wit",
        world: "plugin",
    });

    pub use self::exports::sluice::transform::transformer::{BatchResult, PluginInfo};
    pub use self::sluice::transform::types::{Blobs, ColumnType, ColumnValues, Failure, Header, RecordIn};
    #[cfg(test)]
    pub use self::sluice::transform::types::{ColumnData, OutputBatch};

    /// The `types` interface declares only records, so the host has nothing to implement for it.
    impl self::sluice::transform::types::Host for super::super::sandbox::SandboxState {}
}

/// The previous contract, `sluice:transform@0.2.0`: rows as JSON text.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/0.2.0/transform.wit",
        world: "plugin",
    });

    pub use self::exports::sluice::transform::transformer::{BatchResult, PluginInfo};
    #[cfg(test)]
    pub use self::sluice::transform::types::RecordOut;
    pub use self::sluice::transform::types::{Failure, Header, RecordIn};

    /// The `types` interface declares only records, so the host has nothing to implement for it.
    impl self::sluice::transform::types::Host for super::super::sandbox::SandboxState {}
}
