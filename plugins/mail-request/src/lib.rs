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
pub mod config;
pub mod mail_id;
pub mod mail_log;
pub mod reply;
pub mod request;
pub mod sendgrid;

use std::sync::{Mutex, PoisonError};

use sluice_plugin_sdk::{BatchResult, Guest, PluginInfo, RecordIn};

pub use crate::batch::{declared_outputs, transform_batch};
pub use crate::config::MailConfig;

/// The settings `init` accepted; a fresh instance that was never configured uses the defaults.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
static CONFIG: Mutex<Option<MailConfig>> = Mutex::new(None);

// Only the wasm export uses the plugin type; native builds keep it for the tests below.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct MailRequestPlugin;

impl Guest for MailRequestPlugin {
    fn info() -> PluginInfo {
        sluice_plugin_sdk::plugin_info!(declared_outputs())
    }

    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let config = MailConfig::from_settings(&config).map_err(|error| error.to_string())?;
        *CONFIG.lock().unwrap_or_else(PoisonError::into_inner) = Some(config);
        Ok(())
    }

    fn transform(batch: Vec<RecordIn>) -> Result<BatchResult, String> {
        let config = CONFIG.lock().unwrap_or_else(PoisonError::into_inner).clone().unwrap_or_default();
        Ok(transform_batch(&batch, &config))
    }
}

sluice_plugin_sdk::export_plugin!(MailRequestPlugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_names_the_crate_and_both_outputs() {
        let info = MailRequestPlugin::info();
        assert_eq!(info.name, "mail-request");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        let outputs: Vec<&str> = info.outputs.iter().map(|output| output.name.as_str()).collect();
        assert_eq!(outputs, vec!["sendgrid_mail", "mail_log", "reply"]);
    }

    #[test]
    fn init_refuses_unknown_keys() {
        let error = MailRequestPlugin::init(vec![("colour".to_owned(), "red".to_owned())]);
        assert_eq!(
            error,
            Err("unknown config key `colour` (allowed: mail_id_arg, click_tracking, open_tracking)"
                .to_owned())
        );
    }
}
