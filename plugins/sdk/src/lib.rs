//! Bindings for the `sluice:transform` contract, and the domain-free pieces every plugin needs.
//!
//! A plugin implements [`Guest`] (or, when it takes no settings, [`SettinglessPlugin`]) on a
//! unit struct and exports it with `sluice_plugin_sdk::export_plugin!(MyPlugin);`. Keeping the
//! generated code and the shared helpers here means each plugin crate holds only its domain
//! logic, which it can unit-test natively:
//!
//! - [`json`]: reading a record's JSON text field by field, with dead-letter reasons that read
//!   alike in every plugin;
//! - [`config`]: refusing config keys a plugin does not know;
//! - [`schema`]: declaring each output's columns, rendered as the schema JSON the host reads;
//! - `samples` (native only): checking a plugin against its `samples/` directory in `cargo test`.

pub mod config;
pub mod json;
#[cfg(not(target_arch = "wasm32"))]
pub mod samples;
pub mod schema;

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

/// A plugin that takes no settings: the `init` and `transform` glue of [`Guest`] is written once
/// here, so such a plugin states only what it is and what a batch gives.
///
/// Every type implementing it implements [`Guest`]: `init` refuses any config key (see
/// [`config::refuse_unknown_keys`]), so a setting meant for another step is reported at load,
/// and `transform` never fails the batch as a whole, since bad records are per-record
/// [`Failure`]s.
pub trait SettinglessPlugin {
    /// The plugin's name, version and outputs, usually `sluice_plugin_sdk::plugin_info!(outputs)`.
    fn info() -> PluginInfo;

    /// The rows and failures of one batch.
    fn transform(batch: &[RecordIn]) -> BatchResult;
}

impl<T: SettinglessPlugin> Guest for T {
    fn info() -> PluginInfo {
        T::info()
    }

    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        config::refuse_unknown_keys(&config, &[])
    }

    fn transform(batch: Vec<RecordIn>) -> Result<BatchResult, String> {
        Ok(T::transform(&batch))
    }
}

/// A [`PluginInfo`] with the calling crate's package name and version, and the given outputs.
///
/// A macro because `CARGO_PKG_NAME` must be read where the plugin crate is compiled; the name
/// then always matches the `.wasm` file and the pipeline's `plugin = "..."` without a second
/// copy to keep in step.
#[macro_export]
macro_rules! plugin_info {
    ($outputs:expr) => {
        $crate::PluginInfo {
            name: ::std::string::String::from(::core::env!("CARGO_PKG_NAME")),
            version: ::std::string::String::from(::core::env!("CARGO_PKG_VERSION")),
            outputs: $outputs,
        }
    };
}

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
    /// Input `index` failed as a whole: the host dead-letters all of it and keeps none of the
    /// outputs made from it, so a later re-run of the dead letter cannot emit a row twice.
    pub fn whole(index: u32, reason: impl Into<String>) -> Self {
        Failure { index, reason: reason.into(), part: None }
    }

    /// Only `part` of input `index` failed, for example one event of a webhook body that holds
    /// many. `part` must be an input record of its own, one the plugin would read like any other
    /// (a one-element JSON array for an array input, see [`json::single_element_array`]): the
    /// host dead-letters it instead of the whole input and keeps the rows made from the rest,
    /// and a re-run of the dead letter then gives exactly the rows that were missing.
    pub fn part(index: u32, reason: impl Into<String>, part: impl Into<Vec<u8>>) -> Self {
        Failure { index, reason: reason.into(), part: Some(part.into()) }
    }

    /// Input `index` failed as a whole on one field, in the `field: problem` form the host
    /// reports (see [`Failure::whole`]).
    pub fn field(index: u32, field: &str, problem: impl std::fmt::Display) -> Self {
        Failure::whole(index, format!("{field}: {problem}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest settingless plugin: no outputs, and every batch gives nothing.
    struct Inert;

    impl SettinglessPlugin for Inert {
        fn info() -> PluginInfo {
            plugin_info!(Vec::new())
        }

        fn transform(_batch: &[RecordIn]) -> BatchResult {
            BatchResult { records: Vec::new(), failures: Vec::new() }
        }
    }

    #[test]
    fn plugin_info_names_the_calling_crate() {
        let info = <Inert as Guest>::info();
        assert_eq!(
            (info.name.as_str(), info.version.as_str()),
            ("sluice-plugin-sdk", env!("CARGO_PKG_VERSION"))
        );
        assert!(info.outputs.is_empty());
    }

    #[test]
    fn settingless_plugin_accepts_only_an_empty_config() {
        assert_eq!(Inert::init(Vec::new()), Ok(()));
        assert_eq!(
            Inert::init(vec![("mode".to_owned(), "strict".to_owned())]),
            Err("unknown config key `mode` (allowed: none)".to_owned())
        );
    }

    #[test]
    fn whole_failures_carry_no_part_and_part_failures_carry_theirs() {
        let whole = Failure::whole(3, "value: not JSON");
        assert_eq!((whole.index, whole.reason.as_str(), whole.part), (3, "value: not JSON", None));
        let field = Failure::field(4, "to[2]", "not an email address");
        assert_eq!((field.reason.as_str(), field.part), ("to[2]: not an email address", None));
        let part = Failure::part(5, String::from("[1]: not a JSON object"), &b"[42]"[..]);
        assert_eq!((part.index, part.part.as_deref()), (5, Some(&b"[42]"[..])));
    }

    #[test]
    fn settingless_plugin_never_fails_a_whole_batch() {
        let result = <Inert as Guest>::transform(vec![RecordIn::from_value("{}")]);
        assert!(result.is_ok_and(|result| result.records.is_empty() && result.failures.is_empty()));
    }
}
