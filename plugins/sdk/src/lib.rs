//! Bindings for the `sluice:transform` contract, and the domain-free pieces every plugin needs.
//!
//! A plugin implements [`Plugin`] on a unit struct (its settings a type of its own, or `()`)
//! and exports it with `sluice_plugin_sdk::export_plugin!(MyPlugin);`. Keeping the
//! generated code and the shared helpers here means each plugin crate holds only its domain
//! logic, which it can unit-test natively:
//!
//! - [`json`]: reading a record's JSON text field by field, with dead-letter reasons that read
//!   alike in every plugin;
//! - [`config`]: refusing config keys a plugin does not know;
//! - [`settings`]: the plugin's typed settings, read by `init` and kept for the instance;
//! - [`schema`]: declaring each output's columns;
//! - [`rows`]: writing a batch's rows straight into the contract's typed columns, from `Serialize`
//!   structs or value by value, and collecting every output's rows and the failures;
//! - [`render`]: checking a batch against its output's columns and reading rows back as JSON
//!   objects, as the host renders them;
//! - `samples` (native only): checking a plugin against its `samples/` directory in `cargo test`.

pub mod config;
pub mod json;
pub mod render;
pub mod rows;
#[cfg(not(target_arch = "wasm32"))]
pub mod samples;
pub mod schema;
pub mod settings;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        // The contract, inside the crate so the crate builds wherever it is (a link to the
        // repository's `wit/transform.wit`, packaged as the file itself).
        path: "wit/transform.wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "sluice_plugin_sdk::bindings",
        // Lets tests compare results; the contract's enums derive it already.
        additional_derives: [PartialEq],
    });
}

pub use bindings::exports::sluice::transform::transformer::Guest;
pub use bindings::sluice::transform::types::{
    BatchResult, Blobs, ColumnData, ColumnValues, Failure, Header, OutputBatch, OutputInfo, PluginInfo,
    RecordIn, TextLists,
};
pub use rows::{InputKeys, OutputRows, Outputs, RowError, RowWriter};

/// What the SDK's macros expand to, not an API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}
pub use settings::PluginSettings;

/// A transform plugin: what it is, what it reads from its step's config, and what a batch
/// gives. The `init` and `transform` glue of [`Guest`] is written once here: `init` reads the
/// config into [`Plugin::Settings`] and the SDK keeps them for the instance (see
/// [`settings`]), so a plugin holds no global of its own and every batch gets them as an
/// argument.
///
/// `transform` never fails the batch as a whole: bad records are per-record [`Failure`]s.
pub trait Plugin {
    /// The plugin's settings, or `()` when it takes none (then any config key is refused).
    type Settings: PluginSettings;

    /// The plugin's name, version and outputs, usually `sluice_plugin_sdk::plugin_info!(outputs)`.
    fn info() -> PluginInfo;

    /// The rows and failures of one batch, under the settings `init` accepted (the defaults on
    /// an instance `init` never configured).
    fn transform(batch: &[RecordIn], settings: &Self::Settings) -> BatchResult;
}

impl<T: Plugin> Guest for T {
    fn info() -> PluginInfo {
        T::info()
    }

    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        settings::accept::<T::Settings>(&config)
    }

    fn transform(batch: Vec<RecordIn>) -> Result<BatchResult, String> {
        Ok(settings::with_accepted(|settings: &T::Settings| T::transform(&batch, settings)))
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
        Failure { index, field: None, reason: reason.into(), part: None }
    }

    /// Only `part` of input `index` failed, for example one event of a webhook body that holds
    /// many. `part` must be an input record of its own, one the plugin would read like any other
    /// (a one-element JSON array for an array input, see [`json::single_element_array`]): the
    /// host dead-letters it instead of the whole input and keeps the rows made from the rest,
    /// and a re-run of the dead letter then gives exactly the rows that were missing.
    pub fn part(index: u32, reason: impl Into<String>, part: impl Into<Vec<u8>>) -> Self {
        Failure { index, field: None, reason: reason.into(), part: Some(part.into()) }
    }

    /// Input `index` failed as a whole on one field: `field` is its path (for example `to[2]`
    /// or `from.email`) and `problem` the reason, without the path (see [`Failure::whole`]).
    pub fn field(index: u32, field: &str, problem: impl std::fmt::Display) -> Self {
        Failure { index, field: Some(field.to_owned()), reason: problem.to_string(), part: None }
    }

    /// This failure, naming `field` (a path) as the one at fault: for a [`Failure::part`] whose
    /// problem is one field of the part.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl BatchResult {
    /// A result with no rows and no failures.
    pub fn empty() -> Self {
        BatchResult { outputs: Vec::new(), failures: Vec::new() }
    }

    /// How many rows the batch gave, on every output together.
    pub fn row_count(&self) -> usize {
        self.outputs.iter().map(|batch| batch.inputs.len()).sum()
    }

    /// The batch of rows for output `output`, if it received any.
    pub fn output(&self, output: &str) -> Option<&OutputBatch> {
        self.outputs.iter().find(|batch| batch.output == output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest settingless plugin: no outputs, and every batch gives nothing.
    struct Inert;

    impl Plugin for Inert {
        type Settings = ();

        fn info() -> PluginInfo {
            plugin_info!(Vec::new())
        }

        fn transform(_batch: &[RecordIn], _settings: &()) -> BatchResult {
            BatchResult::empty()
        }
    }

    /// A plugin with a setting: it fails every record when `strict` is set.
    struct Strict;

    #[derive(Default)]
    struct StrictSettings {
        strict: bool,
    }

    impl PluginSettings for StrictSettings {
        fn from_config(config: &[(String, String)]) -> Result<Self, String> {
            config::refuse_unknown_keys(config, &["strict"])?;
            Ok(StrictSettings { strict: config.iter().any(|(_, value)| value == "true") })
        }
    }

    impl Plugin for Strict {
        type Settings = StrictSettings;

        fn info() -> PluginInfo {
            plugin_info!(Vec::new())
        }

        fn transform(batch: &[RecordIn], settings: &StrictSettings) -> BatchResult {
            let failures = (0..batch.len() as u32)
                .filter(|_| settings.strict)
                .map(|index| Failure::whole(index, "strict"))
                .collect();
            BatchResult { outputs: Vec::new(), failures }
        }
    }

    #[test]
    fn transform_gets_the_settings_init_accepted() {
        let batch = vec![RecordIn::from_value("{}")];
        let failures = |result: Result<BatchResult, String>| result.map(|result| result.failures.len());
        assert_eq!(failures(<Strict as Guest>::transform(batch.clone())), Ok(0), "defaults before init");
        assert_eq!(<Strict as Guest>::init(vec![("strict".to_owned(), "true".to_owned())]), Ok(()));
        assert_eq!(failures(<Strict as Guest>::transform(batch)), Ok(1));
        assert_eq!(
            <Strict as Guest>::init(vec![("mode".to_owned(), "x".to_owned())]),
            Err("unknown config key `mode` (allowed: strict)".to_owned())
        );
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
        let whole = Failure::whole(3, "not JSON");
        assert_eq!(
            (whole.index, whole.field, whole.reason.as_str(), whole.part),
            (3, None, "not JSON", None)
        );
        let part = Failure::part(5, String::from("not a JSON object"), &b"[42]"[..]);
        assert_eq!((part.index, part.field.as_deref(), part.part.as_deref()), (5, None, Some(&b"[42]"[..])));
    }

    #[test]
    fn field_failures_name_the_field_apart_from_the_reason() {
        let field = Failure::field(4, "to[2]", "not an email address");
        assert_eq!(
            (field.index, field.field.as_deref(), field.reason.as_str(), field.part),
            (4, Some("to[2]"), "not an email address", None)
        );
        let part = Failure::part(5, "required", &b"[{}]"[..]).with_field("[0].email");
        assert_eq!((part.field.as_deref(), part.reason.as_str()), (Some("[0].email"), "required"));
    }

    #[test]
    fn settingless_plugin_never_fails_a_whole_batch() {
        let result = <Inert as Guest>::transform(vec![RecordIn::from_value("{}")]);
        assert_eq!(result, Ok(BatchResult::empty()));
    }
}
