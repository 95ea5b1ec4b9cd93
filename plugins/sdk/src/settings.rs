//! A plugin's settings: what `init` makes of the pipeline step's `[steps.config]`, kept here
//! for the instance so no plugin keeps a global of its own.
//!
//! The contract's functions take no `self`, so what `init` reads has to live in the instance's
//! globals. The SDK keeps it in one place, typed by the plugin's [`PluginSettings`], and hands
//! it to every [`Plugin::transform`](crate::Plugin::transform) as an argument. An instance runs
//! one call at a time on one thread, so a thread-local needs no lock; native tests, each on a
//! thread of their own, do not see each other's settings.

use std::any::Any;
use std::cell::RefCell;

/// What a plugin reads from its step's config.
pub trait PluginSettings: Default + 'static {
    /// Reads `config`, usually starting from the defaults.
    ///
    /// # Errors
    /// An unknown key (see [`crate::config::refuse_unknown_keys`]) or a value the key does not
    /// allow, as a sentence for whoever wrote the pipeline; the host refuses the load with it
    /// and names the plugin in front.
    fn from_config(config: &[(String, String)]) -> Result<Self, String>;
}

/// No settings: every config key is refused, so a setting meant for another step is reported
/// at load instead of silently changing nothing.
impl PluginSettings for () {
    fn from_config(config: &[(String, String)]) -> Result<Self, String> {
        crate::config::refuse_unknown_keys(config, &[])
    }
}

thread_local! {
    /// The settings `init` accepted for this instance, as the plugin's own type.
    static ACCEPTED: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Reads `config` into `S` and keeps it for this instance's batches.
///
/// # Errors
/// What [`PluginSettings::from_config`] refused; the settings kept before stay.
pub(crate) fn accept<S: PluginSettings>(config: &[(String, String)]) -> Result<(), String> {
    let settings = S::from_config(config)?;
    ACCEPTED.set(Some(Box::new(settings)));
    Ok(())
}

/// Runs `f` with the settings `init` accepted, or `S`'s defaults on an instance never
/// configured.
pub(crate) fn with_accepted<S: PluginSettings, R>(f: impl FnOnce(&S) -> R) -> R {
    ACCEPTED.with_borrow(|accepted| {
        match accepted.as_ref().and_then(|settings| settings.downcast_ref::<S>()) {
            Some(settings) => f(settings),
            None => f(&S::default()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct Threshold(u32);

    impl PluginSettings for Threshold {
        fn from_config(config: &[(String, String)]) -> Result<Self, String> {
            crate::config::refuse_unknown_keys(config, &["min"])?;
            match config.first() {
                Some((_, value)) => {
                    value.parse().map(Threshold).map_err(|_| format!("`min`: not a number: {value}"))
                }
                None => Ok(Threshold::default()),
            }
        }
    }

    fn config(value: &str) -> Vec<(String, String)> {
        vec![("min".to_owned(), value.to_owned())]
    }

    #[test]
    fn an_unconfigured_instance_has_the_defaults() {
        assert_eq!(with_accepted(|settings: &Threshold| settings.0), 0);
    }

    #[test]
    fn accepted_settings_reach_every_later_batch() {
        assert_eq!(accept::<Threshold>(&config("7")), Ok(()));
        assert_eq!(with_accepted(|settings: &Threshold| settings.0), 7);
        assert_eq!(with_accepted(|settings: &Threshold| settings.0), 7);
    }

    #[test]
    fn refused_settings_keep_the_ones_before() {
        assert_eq!(accept::<Threshold>(&config("3")), Ok(()));
        assert_eq!(accept::<Threshold>(&config("many")), Err("`min`: not a number: many".to_owned()));
        assert_eq!(with_accepted(|settings: &Threshold| settings.0), 3);
    }

    #[test]
    fn no_settings_refuse_any_key() {
        assert_eq!(<() as PluginSettings>::from_config(&[]), Ok(()));
        assert_eq!(
            <() as PluginSettings>::from_config(&config("1")),
            Err("unknown config key `min` (allowed: none)".to_owned())
        );
    }
}
