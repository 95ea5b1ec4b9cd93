//! Bindings for the `sluice:transform` contract, shared by every plugin crate.
//!
//! A plugin implements [`Guest`] on a unit struct and exports it with
//! `sluice_plugin_sdk::export_plugin!(MyPlugin);`. Keeping the generated code here means each
//! plugin crate holds only its domain logic, which it can unit-test natively.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "sluice_plugin_sdk::bindings",
    });
}

pub use bindings::exports::sluice::transform::transformer::Guest;
pub use bindings::sluice::transform::types::{
    BatchResult, Failure, Header, OutputInfo, PluginInfo, RecordIn, RecordOut,
};

/// Exports a type implementing [`Guest`] as this component's `transformer`.
///
/// The export exists only when building for wasm: native builds (unit tests, clippy) keep the
/// plugin's logic without the component ABI symbols, which native linkers reject.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export!($plugin with_types_in $crate::bindings);
    };
}

impl RecordIn {
    /// A record with only a value, as most sources and tests produce.
    pub fn from_value(value: impl Into<Vec<u8>>) -> Self {
        RecordIn { key: None, value: value.into(), headers: Vec::new() }
    }
}

impl Failure {
    /// A failure of input `index` on one field, in the `field: problem` form the host reports.
    pub fn field(index: u32, field: &str, problem: impl std::fmt::Display) -> Self {
        Failure { index, reason: format!("{field}: {problem}") }
    }
}
