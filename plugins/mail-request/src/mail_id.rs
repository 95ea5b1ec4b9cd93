//! The mail id that joins a request to the webhook events SendGrid later reports for it.

use thiserror::Error;
use uuid::Builder;

/// Why no mail id could be had for a record.
#[derive(Debug, Error)]
pub enum MailIdError {
    #[error("record key is not UTF-8, so it cannot be used as the mail id")]
    KeyNotUtf8,
    #[error("could not generate a mail id: {0}")]
    Randomness(getrandom::Error),
}

/// The mail id for a record: its key when it has one, else a fresh random UUID.
///
/// The host gives every HTTP request a fresh id as the record key, so the id it returns to the
/// caller and the one in `custom_args` are the same; sources without keys still get unique ids.
///
/// # Errors
/// A key that is not UTF-8, or no randomness from the runtime.
pub fn mail_id_for(key: Option<&[u8]>) -> Result<String, MailIdError> {
    match key {
        Some(key) if !key.is_empty() => {
            std::str::from_utf8(key).map(str::to_owned).map_err(|_| MailIdError::KeyNotUtf8)
        }
        _ => random_uuid_v4().map_err(MailIdError::Randomness),
    }
}

/// A random (version 4, RFC 9562) UUID in its hyphenated lower-case form.
///
/// The bytes come from `getrandom` rather than through `Uuid::new_v4`, which panics when there
/// is no randomness: a panic would trap and fail the whole batch, where this fails one record.
/// On `wasm32-wasip2` they are the host's `wasi:random`, which every plugin instance is given.
fn random_uuid_v4() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(uuid_v4(bytes))
}

/// The version 4 UUID made of `random_bytes`, its version and variant bits set.
fn uuid_v4(random_bytes: [u8; 16]) -> String {
    Builder::from_random_bytes(random_bytes).into_uuid().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_the_mail_id() {
        assert_eq!(mail_id_for(Some(b"req-123")).ok().as_deref(), Some("req-123"));
    }

    #[test]
    fn non_utf8_key_is_refused() {
        assert!(matches!(mail_id_for(Some(&[0xff, 0xfe])), Err(MailIdError::KeyNotUtf8)));
    }

    #[test]
    fn missing_or_empty_key_gets_a_fresh_uuid() {
        let first = mail_id_for(None).ok();
        let second = mail_id_for(Some(b"")).ok();
        assert!(first.is_some() && second.is_some());
        assert_ne!(first, second);
    }

    #[test]
    fn uuid_has_version_and_variant_bits() {
        assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn random_uuid_is_well_formed() {
        let Ok(uuid) = random_uuid_v4() else {
            panic!("no randomness");
        };
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12]);
        assert_eq!(uuid.chars().nth(14), Some('4'));
    }
}
