//! The plugin's settings, read once from the pipeline's key/value config in `init`.

use sluice_plugin_sdk::PluginSettings;
use sluice_plugin_sdk::config::refuse_unknown_keys;
use thiserror::Error;

/// The config keys this plugin accepts, listed in every unknown-key error.
const ALLOWED_KEYS: &[&str] = &["mail_id_arg", "click_tracking", "open_tracking"];

/// How mail requests are turned into SendGrid bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// The `custom_args` key that carries the mail id, so webhook events (which echo
    /// custom args) can be joined back to the request.
    pub mail_id_arg: String,
    /// Whether SendGrid rewrites links to report clicks.
    pub click_tracking: bool,
    /// Whether SendGrid adds a pixel to report opens.
    pub open_tracking: bool,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig { mail_id_arg: "mail_id".to_owned(), click_tracking: true, open_tracking: true }
    }
}

/// What `init` reads; the SDK keeps it for the instance and hands it to every batch.
impl PluginSettings for MailConfig {
    fn from_config(config: &[(String, String)]) -> Result<Self, String> {
        MailConfig::from_settings(config).map_err(|error| error.to_string())
    }
}

/// A setting the plugin cannot use; the host refuses to load the pipeline with it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Worded by the SDK so every plugin names unknown keys alike.
    #[error("{0}")]
    UnknownKey(String),
    #[error("config key `{key}`: expected true or false, got `{value}`")]
    NotABool { key: String, value: String },
    #[error("config key `mail_id_arg`: must not be empty")]
    EmptyMailIdArg,
}

impl MailConfig {
    /// Reads the settings, starting from the defaults.
    ///
    /// # Errors
    /// An unknown key, a tracking flag that is not `true`/`false`, or an empty `mail_id_arg`.
    pub fn from_settings(settings: &[(String, String)]) -> Result<Self, ConfigError> {
        refuse_unknown_keys(settings, ALLOWED_KEYS).map_err(ConfigError::UnknownKey)?;
        let mut config = MailConfig::default();
        for (key, value) in settings {
            match key.as_str() {
                "mail_id_arg" if value.trim().is_empty() => {
                    return Err(ConfigError::EmptyMailIdArg);
                }
                "mail_id_arg" => config.mail_id_arg = value.trim().to_owned(),
                "click_tracking" => config.click_tracking = parse_bool(key, value)?,
                "open_tracking" => config.open_tracking = parse_bool(key, value)?,
                _ => return Err(ConfigError::UnknownKey(key.clone())),
            }
        }
        Ok(config)
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::NotABool { key: key.to_owned(), value: value.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn no_settings_gives_defaults() {
        assert_eq!(MailConfig::from_settings(&[]), Ok(MailConfig::default()));
    }

    #[test]
    fn every_key_is_read() {
        let config = MailConfig::from_settings(&settings(&[
            ("mail_id_arg", "request_id"),
            ("click_tracking", "false"),
            ("open_tracking", "true"),
        ]));
        assert_eq!(
            config,
            Ok(MailConfig {
                mail_id_arg: "request_id".to_owned(),
                click_tracking: false,
                open_tracking: true,
            })
        );
    }

    #[test]
    fn unknown_key_is_named_with_the_allowed_keys() {
        let error = MailConfig::from_settings(&settings(&[("api_key", "x")])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown config key `api_key` (allowed: mail_id_arg, click_tracking, open_tracking)"
        );
    }

    #[test]
    fn tracking_flag_must_be_true_or_false() {
        let error = MailConfig::from_settings(&settings(&[("open_tracking", "yes")])).unwrap_err();
        assert_eq!(error.to_string(), "config key `open_tracking`: expected true or false, got `yes`");
    }

    #[test]
    fn empty_mail_id_arg_is_refused() {
        let error = MailConfig::from_settings(&settings(&[("mail_id_arg", " ")])).unwrap_err();
        assert_eq!(error, ConfigError::EmptyMailIdArg);
    }
}
