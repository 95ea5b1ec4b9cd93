//! Sluice transform plugin: the validation step of the user-status ETL.
//!
//! Each input record is one user's status as exported by the upstream system. A record with
//! every field present, non-null and well typed (`statusLogs` an array of objects) becomes a
//! `user_status` row plus a `status_logs` record for `explode-status-logs`; any other object
//! becomes one `user_status_error_rec` row holding all its fields as text. Input that is not a
//! JSON object is a failure and goes to the dead letters. See [`user_status`] for the exact
//! rules. The plugin takes no settings.

mod batch;
mod outputs;
mod user_status;

use sluice_plugin_sdk::{BatchResult, Plugin, PluginInfo, RecordIn};

/// The outputs this plugin declares, for native code (benchmarks) that runs its logic.
pub use crate::outputs::declared as declared_outputs;

/// The exported plugin. It keeps no state, so every batch stands alone.
///
/// Public so native code (benchmarks, tests) can run the same logic through
/// [`sluice_plugin_sdk::Guest`] without a wasm runtime.
pub struct ValidateUserStatus;

impl Plugin for ValidateUserStatus {
    type Settings = ();

    fn info() -> PluginInfo {
        sluice_plugin_sdk::plugin_info!(outputs::declared())
    }

    fn transform(batch: &[RecordIn], _settings: &()) -> BatchResult {
        batch::transform(batch)
    }
}

sluice_plugin_sdk::export_plugin!(ValidateUserStatus);

#[cfg(test)]
mod tests {
    use sluice_plugin_sdk::Guest;

    use super::*;

    #[test]
    fn info_names_the_crate_and_its_outputs() {
        let info = <ValidateUserStatus as Guest>::info();
        assert_eq!(
            (info.name.as_str(), info.version.as_str()),
            ("validate-user-status", env!("CARGO_PKG_VERSION"))
        );
        let outputs: Vec<_> = info.outputs.iter().map(|output| output.name.as_str()).collect();
        assert_eq!(outputs, ["user_status", "status_logs", "user_status_error_rec"]);
    }

    #[test]
    fn empty_config_is_accepted() {
        assert_eq!(<ValidateUserStatus as Guest>::init(Vec::new()), Ok(()));
    }

    #[test]
    fn any_key_is_refused_by_name() {
        let error =
            <ValidateUserStatus as Guest>::init(vec![("mode".to_owned(), "strict".to_owned())]).unwrap_err();
        assert!(error.contains("`mode`"), "{error}");
        assert!(error.contains("allowed: none"), "{error}");
    }
}
