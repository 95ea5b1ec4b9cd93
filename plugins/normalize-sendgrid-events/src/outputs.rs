//! The plugin's one output, `events`: one row per SendGrid event, its columns beside the row
//! type in [`crate::event`].

use sluice_plugin_sdk::OutputInfo;

use crate::event;

/// The outputs this plugin declares in `info()`.
pub fn declared() -> Vec<OutputInfo> {
    vec![OutputInfo::new(event::OUTPUT, event::COLUMNS)]
}
