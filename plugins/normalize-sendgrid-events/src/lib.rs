//! Sluice plugin `normalize-sendgrid-events`: SendGrid event webhook bodies in, typed rows out.
//!
//! Each input record is one webhook body, a JSON array of events. Every valid event becomes one
//! row of the `events` output (columns in [`outputs::COLUMNS`], partitioned by `dt` and `event`),
//! deduplicated on `sg_event_id` within the batch because SendGrid retries deliveries. Events
//! that are not objects, lack a required field, have an unknown type or a wrongly typed field
//! become failures naming the event's position and the field; each such failure carries the
//! event alone as its part (a one-event array), so the host dead-letters only that event and the
//! rest of the body still goes through. A body that is not a JSON array fails whole. The plugin
//! takes no settings (`Plugin::Settings` is `()`).

pub mod batch;
pub mod date;
pub mod event;
pub mod fields;
pub mod normalize;
pub mod outputs;
pub mod wire;

use sluice_plugin_sdk::{BatchResult, Plugin, PluginInfo, RecordIn};

pub use crate::batch::transform_batch;
pub use crate::outputs::declared as declared_outputs;

// Only the wasm export uses the plugin type; native builds keep it for the tests below.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct NormalizeSendgridEventsPlugin;

impl Plugin for NormalizeSendgridEventsPlugin {
    type Settings = ();

    fn info() -> PluginInfo {
        sluice_plugin_sdk::plugin_info!(outputs::declared())
    }

    fn transform(batch: &[RecordIn], _settings: &()) -> BatchResult {
        transform_batch(batch)
    }
}

sluice_plugin_sdk::export_plugin!(NormalizeSendgridEventsPlugin);

#[cfg(test)]
mod tests {
    use sluice_plugin_sdk::Guest;

    use super::*;

    #[test]
    fn info_names_the_crate_and_the_events_output() {
        let info = <NormalizeSendgridEventsPlugin as Guest>::info();
        assert_eq!(info.name, "normalize-sendgrid-events");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        let outputs: Vec<&str> = info.outputs.iter().map(|output| output.name.as_str()).collect();
        assert_eq!(outputs, vec!["events"]);
    }

    #[test]
    fn init_accepts_no_settings() {
        assert_eq!(<NormalizeSendgridEventsPlugin as Guest>::init(Vec::new()), Ok(()));
        assert_eq!(
            <NormalizeSendgridEventsPlugin as Guest>::init(vec![("dedupe".to_owned(), "false".to_owned())]),
            Err("unknown config key `dedupe` (allowed: none)".to_owned())
        );
    }
}
