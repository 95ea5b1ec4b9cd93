//! Sluice transform plugin: the second step of the user-status ETL.
//!
//! It reads the `status_logs` records that `validate-user-status` emits
//! (`{"userId": ..., "statusLogs": [...]}`) and writes one `user_status_log` row per entry of
//! `statusLogs`, as the original job's Spark `explode` did: every entry that is an object gives
//! a row, with NULL for a field it lacks. A record with an entry that is not an object fails
//! whole: one failure lists every such entry and none of its entries become rows, so replaying
//! the fixed dead letter cannot insert the other entries twice. See [`status_log`] for the
//! exact rules. The plugin takes no settings.

mod batch;
mod outputs;
mod status_log;

use sluice_plugin_sdk::{BatchResult, Plugin, PluginInfo, RecordIn};

/// The outputs this plugin declares, for native code (benchmarks) that runs its logic.
pub use crate::outputs::declared as declared_outputs;

/// The exported plugin. It keeps no state, so every batch stands alone.
///
/// Public so native code (benchmarks, tests) can run the same logic through
/// [`sluice_plugin_sdk::Guest`] without a wasm runtime.
pub struct ExplodeStatusLogs;

impl Plugin for ExplodeStatusLogs {
    type Settings = ();

    fn info() -> PluginInfo {
        sluice_plugin_sdk::plugin_info!(outputs::declared())
    }

    fn transform(batch: &[RecordIn], _settings: &()) -> BatchResult {
        batch::transform(batch)
    }
}

sluice_plugin_sdk::export_plugin!(ExplodeStatusLogs);

#[cfg(test)]
mod tests {
    use sluice_plugin_sdk::Guest;

    use super::*;

    #[test]
    fn info_names_the_crate_and_its_output() {
        let info = <ExplodeStatusLogs as Guest>::info();
        assert_eq!(
            (info.name.as_str(), info.version.as_str()),
            ("explode-status-logs", env!("CARGO_PKG_VERSION"))
        );
        let outputs: Vec<_> = info.outputs.iter().map(|output| output.name.as_str()).collect();
        assert_eq!(outputs, ["user_status_log"]);
    }

    #[test]
    fn empty_config_is_accepted() {
        assert_eq!(<ExplodeStatusLogs as Guest>::init(Vec::new()), Ok(()));
    }

    #[test]
    fn any_key_is_refused_by_name() {
        let error =
            <ExplodeStatusLogs as Guest>::init(vec![("mode".to_owned(), "strict".to_owned())]).unwrap_err();
        assert!(error.contains("`mode`"), "{error}");
        assert!(error.contains("allowed: none"), "{error}");
    }
}
