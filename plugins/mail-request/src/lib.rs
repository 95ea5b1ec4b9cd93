//! Sluice plugin `mail-request`: validates mail requests and builds SendGrid bodies for them.
//!
//! Each input record is one request, in the sluice form or the original service's form (see
//! [`request`]). A valid request yields a `sendgrid_mail` record (the SendGrid v3 `mail/send`
//! body, ready to post), a `mail_log` record and a `reply` record (the caller's answer), all
//! keyed by the mail id that is also put into the body's `custom_args`, so webhook events can
//! be joined back to the request. An invalid request yields a failure whose reason names the
//! field at fault.
//!
//! Settings (`init`): `mail_id_arg` (default `mail_id`), `click_tracking` and `open_tracking`
//! (`true`/`false`, default `true`).

pub mod address;
pub mod batch;
pub mod mail_id;
pub mod mail_log;
pub mod outputs;
pub mod reply;
pub mod request;
pub mod sendgrid;
pub mod settings;

use sluice_plugin_sdk::{BatchResult, Plugin, PluginInfo, RecordIn};

pub use crate::batch::transform_batch;
pub use crate::outputs::declared as declared_outputs;
pub use crate::settings::MailConfig;

// Only the wasm export uses the plugin type; native builds keep it for the tests below.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct MailRequestPlugin;

impl Plugin for MailRequestPlugin {
    /// Read by `init`; the SDK keeps them for the instance (defaults until then).
    type Settings = MailConfig;

    fn info() -> PluginInfo {
        sluice_plugin_sdk::plugin_info!(outputs::declared())
    }

    fn transform(batch: &[RecordIn], config: &MailConfig) -> BatchResult {
        transform_batch(batch, config)
    }
}

sluice_plugin_sdk::export_plugin!(MailRequestPlugin);

#[cfg(test)]
mod tests {
    use sluice_plugin_sdk::Guest;

    use super::*;

    #[test]
    fn info_names_the_crate_and_both_outputs() {
        let info = <MailRequestPlugin as Guest>::info();
        assert_eq!(info.name, "mail-request");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        let outputs: Vec<&str> = info.outputs.iter().map(|output| output.name.as_str()).collect();
        assert_eq!(outputs, vec!["sendgrid_mail", "mail_log", "reply"]);
    }

    /// The `sendgrid_mail` body of one valid request, as the plugin's export makes it.
    fn exported_body() -> serde_json::Value {
        let request = r#"{"from": "a@example.com", "to": "b@example.com", "subject": "Hi", "text": "x"}"#;
        let result =
            <MailRequestPlugin as Guest>::transform(vec![RecordIn::from_value(request)]).expect("batch");
        let rows = sluice_plugin_sdk::render::result_rows(&declared_outputs(), &result).expect("rows");
        let mail = rows.into_iter().find(|row| row.output == "sendgrid_mail").expect("a sendgrid_mail row");
        mail.value()
    }

    #[test]
    fn batches_get_the_settings_init_accepted() {
        // The body may be a JSON text column: compare without its escapes.
        let tracking = |body: &serde_json::Value| {
            body.to_string().replace('\\', "").contains(r#""click_tracking":{"enable":false}"#)
        };
        assert!(!tracking(&exported_body()), "tracking is on by default");
        let config = vec![("click_tracking".to_owned(), "false".to_owned())];
        assert_eq!(<MailRequestPlugin as Guest>::init(config), Ok(()));
        assert!(tracking(&exported_body()), "{}", exported_body());
    }

    #[test]
    fn init_refuses_unknown_keys() {
        let error = <MailRequestPlugin as Guest>::init(vec![("colour".to_owned(), "red".to_owned())]);
        assert_eq!(
            error,
            Err("unknown config key `colour` (allowed: mail_id_arg, click_tracking, open_tracking)"
                .to_owned())
        );
    }
}
