//! Email addresses: a syntax check strict enough to catch typos before SendGrid does.
//!
//! This is deliberately not an RFC 5322 parser: quoted local parts, comments and IP-literal
//! domains are legal there but never appear in the addresses our callers send, and SendGrid
//! rejects most of them anyway. What it enforces is `local@domain` with a dotted domain, no
//! whitespace or header-breaking characters, and the SMTP length limits.

use serde::Serialize;
use thiserror::Error;

/// The longest address SMTP can carry (RFC 5321: a 256-octet path less the angle brackets).
pub const MAX_ADDRESS_LENGTH: usize = 254;
/// The longest local part (before the `@`) RFC 5321 allows.
const MAX_LOCAL_PART_LENGTH: usize = 64;
/// The longest label (between dots) a domain name may have.
const MAX_DOMAIN_LABEL_LENGTH: usize = 63;
/// Characters that would break an address header or that only quoted forms may hold.
const FORBIDDEN_CHARACTERS: &[char] = &['<', '>', '(', ')', '[', ']', ',', ';', ':', '"', '\\'];

/// An address with an optional display name, shaped like SendGrid's email object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Why a string is not an address we will send to.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("not a valid email address: empty")]
    Empty,
    #[error("not a valid email address: longer than {MAX_ADDRESS_LENGTH} characters")]
    TooLong,
    #[error("not a valid email address: contains whitespace or a control character")]
    Whitespace,
    #[error("not a valid email address: contains one of < > ( ) [ ] , ; : \" \\")]
    ForbiddenCharacter,
    #[error("not a valid email address: no @")]
    NoAt,
    #[error("not a valid email address: more than one @")]
    SeveralAts,
    #[error("not a valid email address: nothing before the @")]
    EmptyLocalPart,
    #[error("not a valid email address: more than {MAX_LOCAL_PART_LENGTH} characters before the @")]
    LocalPartTooLong,
    #[error("not a valid email address: a dot at the start or end of the name, or two in a row")]
    MisplacedDot,
    #[error("not a valid email address: the domain has no dot")]
    DomainWithoutDot,
    #[error("not a valid email address: the domain has an empty, overlong or hyphen-edged label")]
    BadDomainLabel,
}

/// Checks that `address` is a plausible `local@domain` address.
///
/// # Errors
/// The first rule the address breaks, worded for the caller.
pub fn check_address(address: &str) -> Result<(), AddressError> {
    if address.is_empty() {
        return Err(AddressError::Empty);
    }
    if address.len() > MAX_ADDRESS_LENGTH {
        return Err(AddressError::TooLong);
    }
    if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AddressError::Whitespace);
    }
    if address.contains(FORBIDDEN_CHARACTERS) {
        return Err(AddressError::ForbiddenCharacter);
    }
    let (local_part, domain) = match address.split_once('@') {
        None => return Err(AddressError::NoAt),
        Some((_, domain)) if domain.contains('@') => return Err(AddressError::SeveralAts),
        Some(parts) => parts,
    };
    if local_part.is_empty() {
        return Err(AddressError::EmptyLocalPart);
    }
    if local_part.len() > MAX_LOCAL_PART_LENGTH {
        return Err(AddressError::LocalPartTooLong);
    }
    if local_part.starts_with('.') || local_part.ends_with('.') || local_part.contains("..") {
        return Err(AddressError::MisplacedDot);
    }
    if !domain.contains('.') {
        return Err(AddressError::DomainWithoutDot);
    }
    let label_is_valid = |label: &str| {
        !label.is_empty()
            && label.len() <= MAX_DOMAIN_LABEL_LENGTH
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !domain.split('.').all(label_is_valid) {
        return Err(AddressError::BadDomainLabel);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_pass() {
        for address in [
            "a@b.co",
            "first.last+tag@mail.example.com",
            "o'brien@example.ie",
            "user_1@sub-domain.example.org",
            "jürgen@bücher.de",
        ] {
            assert_eq!(check_address(address), Ok(()), "{address}");
        }
    }

    #[test]
    fn each_broken_rule_is_named() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_address = format!("a@{}.com", "b".repeat(250));
        let long_label = format!("a@{}.com", "b".repeat(64));
        let cases = [
            ("", AddressError::Empty),
            (long_address.as_str(), AddressError::TooLong),
            ("a b@example.com", AddressError::Whitespace),
            ("a@example.com\n", AddressError::Whitespace),
            ("Ann <a@example.com>", AddressError::Whitespace),
            ("<a@example.com>", AddressError::ForbiddenCharacter),
            ("a@example.com,b@example.com", AddressError::ForbiddenCharacter),
            ("example.com", AddressError::NoAt),
            ("a@b@example.com", AddressError::SeveralAts),
            ("@example.com", AddressError::EmptyLocalPart),
            (long_local.as_str(), AddressError::LocalPartTooLong),
            (".a@example.com", AddressError::MisplacedDot),
            ("a.@example.com", AddressError::MisplacedDot),
            ("a..b@example.com", AddressError::MisplacedDot),
            ("a@localhost", AddressError::DomainWithoutDot),
            ("a@", AddressError::DomainWithoutDot),
            ("a@example..com", AddressError::BadDomainLabel),
            ("a@example.com.", AddressError::BadDomainLabel),
            ("a@-example.com", AddressError::BadDomainLabel),
            (long_label.as_str(), AddressError::BadDomainLabel),
        ];
        for (address, expected) in cases {
            assert_eq!(check_address(address), Err(expected), "{address:?}");
        }
    }

    #[test]
    fn error_text_starts_with_the_host_wording() {
        assert_eq!(AddressError::NoAt.to_string(), "not a valid email address: no @");
    }

    #[test]
    fn mailbox_without_name_serializes_as_email_only() {
        let mailbox = Mailbox { email: "a@b.co".to_owned(), name: None };
        assert_eq!(serde_json::to_string(&mailbox).ok().as_deref(), Some(r#"{"email":"a@b.co"}"#));
    }
}
