//! Checking the key/value settings a pipeline passes to a plugin's `init`.
//!
//! A key the plugin does not know is refused rather than ignored, so a typo or a setting meant
//! for another step stops the pipeline at load instead of silently changing nothing.

/// Accepts `config` only when every key is one of `allowed`.
///
/// Call it first in `init`, then read the values of the keys you know. The host already names
/// the plugin in front of an `init` error, so the message names only the key and the choices.
///
/// # Errors
/// The first unknown key, with every allowed key (or `none`), for example
/// ``unknown config key `mode` (allowed: none)``.
pub fn refuse_unknown_keys(config: &[(String, String)], allowed: &[&str]) -> Result<(), String> {
    let Some((key, _)) = config.iter().find(|(key, _)| !allowed.contains(&key.as_str())) else {
        return Ok(());
    };
    let allowed = if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") };
    Err(format!("unknown config key `{key}` (allowed: {allowed})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keys: &[&str]) -> Vec<(String, String)> {
        keys.iter().map(|key| ((*key).to_owned(), "value".to_owned())).collect()
    }

    #[test]
    fn empty_config_is_accepted() {
        assert_eq!(refuse_unknown_keys(&[], &[]), Ok(()));
        assert_eq!(refuse_unknown_keys(&[], &["mode"]), Ok(()));
    }

    #[test]
    fn allowed_keys_are_accepted() {
        assert_eq!(refuse_unknown_keys(&config(&["b", "a", "b"]), &["a", "b"]), Ok(()));
    }

    #[test]
    fn any_key_is_refused_by_name_when_none_are_allowed() {
        assert_eq!(
            refuse_unknown_keys(&config(&["mode"]), &[]),
            Err("unknown config key `mode` (allowed: none)".to_owned())
        );
    }

    #[test]
    fn first_unknown_key_is_named_with_every_allowed_key() {
        assert_eq!(
            refuse_unknown_keys(&config(&["a", "colour", "size"]), &["a", "b"]),
            Err("unknown config key `colour` (allowed: a, b)".to_owned())
        );
    }

    #[test]
    fn keys_are_matched_exactly() {
        assert!(refuse_unknown_keys(&config(&["Mode"]), &["mode"]).is_err());
        assert!(refuse_unknown_keys(&config(&["mode "]), &["mode"]).is_err());
    }
}
