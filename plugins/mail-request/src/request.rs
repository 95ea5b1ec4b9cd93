//! Mail requests as callers send them: either accepted form, parsed and validated.
//!
//! Two shapes are accepted so callers of the original service can move without changes:
//! - the sluice form: `from`, `to`, `cc`, `bcc`, `subject`, `text`, `html`, `custom_args`,
//!   `categories`, where an address is a string or `{"email", "name"}` and a recipient list is
//!   an array of addresses, one address, or one comma-separated string;
//! - the original service's form: `senderName`, `fromAddress`, `toAddress`, `subject`,
//!   `content`, `customArgs`. It has one `content` string and no content type, so content whose
//!   first non-blank character is `<` is sent as HTML and anything else as plain text
//!   (the original service sent HTML bodies; plain text rarely starts with a tag).
//!
//! A body mixing the two is refused, as is any unknown field: a misspelt optional field would
//! otherwise be dropped without a word. Errors name fields as the caller spelt them.
//!
//! Repeated recipients are dropped, not refused: SendGrid rejects a request naming an address
//! twice, and delivering one copy is what the caller meant. The first occurrence wins, in the
//! order to, cc, bcc, comparing addresses without regard to case.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};
use sluice_plugin_sdk::Failure;
use sluice_plugin_sdk::json::parse_object;
use thiserror::Error;

use crate::address::{Mailbox, check_address};

/// SendGrid's limit on recipients (to, cc and bcc together) in one request.
pub const MAX_RECIPIENTS: usize = 1000;
/// RFC 5322 caps a header line at 998 characters; a longer subject would need folding that
/// mail clients render inconsistently, so it is refused instead.
pub const MAX_SUBJECT_CHARS: usize = 998;
/// SendGrid's limit on categories per message.
pub const MAX_CATEGORIES: usize = 10;
/// SendGrid's limit on the length of one category.
pub const MAX_CATEGORY_CHARS: usize = 255;

const SLUICE_ONLY_FIELDS: &[&str] = &["from", "to", "cc", "bcc", "text", "html", "custom_args", "categories"];
const ORIGINAL_ONLY_FIELDS: &[&str] = &["senderName", "fromAddress", "toAddress", "content", "customArgs"];
const SHARED_FIELDS: &[&str] = &["subject"];

/// Which accepted shape a request used, so later errors can use that shape's field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestForm {
    /// `from`, `to`, `text`, `html`, `custom_args`, ...
    Sluice,
    /// The original service's `fromAddress`, `toAddress`, `content`, `customArgs`, ...
    Original,
}

impl RequestForm {
    /// The name the caller used for the custom arguments.
    pub fn custom_args_field(self) -> &'static str {
        match self {
            RequestForm::Sluice => "custom_args",
            RequestForm::Original => "customArgs",
        }
    }

    fn to_field(self) -> &'static str {
        match self {
            RequestForm::Sluice => "to",
            RequestForm::Original => "toAddress",
        }
    }
}

/// A validated mail request, independent of the form it arrived in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRequest {
    pub form: RequestForm,
    pub from: Mailbox,
    /// Never empty; no address appears twice across `to`, `cc` and `bcc`.
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    /// Non-blank, one line, at most [`MAX_SUBJECT_CHARS`] characters.
    pub subject: String,
    /// At least one of `text` and `html` is present and non-empty.
    pub text: Option<String>,
    pub html: Option<String>,
    pub custom_args: BTreeMap<String, String>,
    /// Distinct, at most [`MAX_CATEGORIES`].
    pub categories: Vec<String>,
}

impl MailRequest {
    /// Every recipient, in the order to, cc, bcc.
    pub fn recipients(&self) -> impl Iterator<Item = &Mailbox> {
        self.to.iter().chain(&self.cc).chain(&self.bcc)
    }
}

/// Why a request cannot be sent; the text becomes the failure reason.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RequestError {
    /// One field is wrong; shown as `field: problem`, and failed on the field (see
    /// [`RequestError::into_failure`]) so the host can point at it.
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
    /// The request as a whole is wrong.
    #[error("{0}")]
    Request(String),
}

impl RequestError {
    /// Input `index` failed whole with this error, naming the field when it is one field's.
    pub fn into_failure(self, index: u32) -> Failure {
        match self {
            RequestError::Field { field, problem } => Failure::field(index, &field, problem),
            RequestError::Request(reason) => Failure::whole(index, reason),
        }
    }

    pub(crate) fn field(field: impl Into<String>, problem: impl ToString) -> Self {
        RequestError::Field { field: field.into(), problem: problem.to_string() }
    }
}

/// Parses and validates one mail request from its JSON bytes.
///
/// # Errors
/// The first problem found: bad JSON, an unknown or mixed-form field, a bad address, a missing
/// subject or content, or a limit SendGrid would enforce.
pub fn parse_mail_request(value: &[u8]) -> Result<MailRequest, RequestError> {
    let fields: Map<String, Value> = parse_object(value).map_err(RequestError::Request)?;
    let mut request = match detect_form(&fields)? {
        RequestForm::Sluice => parse_sluice_form(&fields)?,
        RequestForm::Original => parse_original_form(&fields)?,
    };
    drop_repeated_recipients(&mut request);
    check_recipient_count(&request)?;
    Ok(request)
}

fn detect_form(fields: &Map<String, Value>) -> Result<RequestForm, RequestError> {
    let mut sluice_field = None;
    let mut original_field = None;
    for key in fields.keys() {
        if SLUICE_ONLY_FIELDS.contains(&key.as_str()) {
            sluice_field.get_or_insert(key);
        } else if ORIGINAL_ONLY_FIELDS.contains(&key.as_str()) {
            original_field.get_or_insert(key);
        } else if !SHARED_FIELDS.contains(&key.as_str()) {
            return Err(RequestError::field(
                key.as_str(),
                "unknown field; a mail request has from, to, cc, bcc, subject, text, html, \
                 custom_args and categories (or, in the original service's form, senderName, \
                 fromAddress, toAddress, subject, content and customArgs)",
            ));
        }
    }
    match (sluice_field, original_field) {
        (Some(sluice), Some(original)) => Err(RequestError::Request(format!(
            "the body mixes the sluice form (`{sluice}`) with the original service's form \
             (`{original}`); send one form only"
        ))),
        (None, Some(_)) => Ok(RequestForm::Original),
        _ => Ok(RequestForm::Sluice),
    }
}

fn parse_sluice_form(fields: &Map<String, Value>) -> Result<MailRequest, RequestError> {
    let from = match fields.get("from") {
        None | Some(Value::Null) => return Err(RequestError::field("from", "required")),
        Some(value) => mailbox(value, "from")?,
    };
    let to = mailbox_list(fields.get("to"), "to")?;
    let cc = mailbox_list(fields.get("cc"), "cc")?;
    let bcc = mailbox_list(fields.get("bcc"), "bcc")?;
    let subject = subject(fields)?;
    let text = non_empty(optional_string(fields, "text")?);
    let html = non_empty(optional_string(fields, "html")?);
    if text.is_none() && html.is_none() {
        return Err(RequestError::field("text", "text or html required"));
    }
    Ok(MailRequest {
        form: RequestForm::Sluice,
        from,
        to: require_recipients(to, "to")?,
        cc,
        bcc,
        subject,
        text,
        html,
        custom_args: custom_args(fields.get("custom_args"), "custom_args")?,
        categories: categories(fields.get("categories"))?,
    })
}

fn parse_original_form(fields: &Map<String, Value>) -> Result<MailRequest, RequestError> {
    let from_address = required_string(fields, "fromAddress")?;
    let from = Mailbox {
        email: checked_address(from_address, "fromAddress")?,
        name: display_name(fields.get("senderName"), "senderName")?,
    };
    let to = mailbox_list(fields.get("toAddress"), "toAddress")?;
    let subject = subject(fields)?;
    let content = required_string(fields, "content")?.to_owned();
    let (text, html) =
        if content.trim_start().starts_with('<') { (None, Some(content)) } else { (Some(content), None) };
    Ok(MailRequest {
        form: RequestForm::Original,
        from,
        to: require_recipients(to, "toAddress")?,
        cc: Vec::new(),
        bcc: Vec::new(),
        subject,
        text,
        html,
        custom_args: custom_args(fields.get("customArgs"), "customArgs")?,
        categories: Vec::new(),
    })
}

/// Reads an address given as a string or as `{"email", "name"}`.
fn mailbox(value: &Value, path: &str) -> Result<Mailbox, RequestError> {
    match value {
        Value::String(address) => Ok(Mailbox { email: checked_address(address, path)?, name: None }),
        Value::Object(fields) => {
            if let Some(key) = fields.keys().find(|key| !matches!(key.as_str(), "email" | "name")) {
                return Err(RequestError::field(
                    format!("{path}.{key}"),
                    "unknown field; an address object has email and name",
                ));
            }
            let email_path = format!("{path}.email");
            let email = match fields.get("email") {
                Some(Value::String(address)) => checked_address(address, &email_path)?,
                None | Some(Value::Null) => return Err(RequestError::field(email_path, "required")),
                Some(_) => return Err(RequestError::field(email_path, "must be a string")),
            };
            let name = display_name(fields.get("name"), &format!("{path}.name"))?;
            Ok(Mailbox { email, name })
        }
        _ => Err(RequestError::field(path, "must be an address string or an object with email and name")),
    }
}

/// Reads recipients given as one address, a comma-separated string, or an array.
fn mailbox_list(value: Option<&Value>, field: &str) -> Result<Vec<Mailbox>, RequestError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(list)) => {
            // Positions count empty pieces too, so an index matches what the caller sees.
            let pieces: Vec<(usize, &str)> =
                list.split(',').map(str::trim).enumerate().filter(|(_, piece)| !piece.is_empty()).collect();
            if let [(_, single)] = pieces.as_slice() {
                return Ok(vec![Mailbox { email: checked_address(single, field)?, name: None }]);
            }
            pieces
                .into_iter()
                .map(|(position, address)| {
                    Ok(Mailbox {
                        email: checked_address(address, &format!("{field}[{position}]"))?,
                        name: None,
                    })
                })
                .collect()
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(position, item)| mailbox(item, &format!("{field}[{position}]")))
            .collect(),
        Some(single @ Value::Object(_)) => Ok(vec![mailbox(single, field)?]),
        Some(_) => Err(RequestError::field(
            field,
            "must be an address, a comma-separated string of addresses, or an array of them",
        )),
    }
}

fn checked_address(address: &str, path: &str) -> Result<String, RequestError> {
    let address = address.trim();
    check_address(address).map_err(|error| RequestError::field(path, error))?;
    Ok(address.to_owned())
}

/// A display name; blank means none. A line break would let a name inject mail headers.
fn display_name(value: Option<&Value>, path: &str) -> Result<Option<String>, RequestError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) if name.contains(['\r', '\n']) => {
            Err(RequestError::field(path, "must be a single line"))
        }
        Some(Value::String(name)) => Ok(non_empty(Some(name.trim()))),
        Some(_) => Err(RequestError::field(path, "must be a string")),
    }
}

fn require_recipients(to: Vec<Mailbox>, field: &str) -> Result<Vec<Mailbox>, RequestError> {
    if to.is_empty() {
        return Err(RequestError::field(field, "at least one recipient required"));
    }
    Ok(to)
}

fn subject(fields: &Map<String, Value>) -> Result<String, RequestError> {
    let subject = required_string(fields, "subject")?;
    if subject.contains(['\r', '\n']) {
        return Err(RequestError::field("subject", "must be a single line"));
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(RequestError::field(
            "subject",
            format!("longer than {MAX_SUBJECT_CHARS} characters, the longest header line RFC 5322 allows"),
        ));
    }
    Ok(subject.to_owned())
}

fn custom_args(value: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>, RequestError> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(args)) => args
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) => Ok((key.clone(), text.clone())),
                _ => Err(RequestError::field(
                    format!("{field}.{key}"),
                    "must be a string (SendGrid carries custom args as strings)",
                )),
            })
            .collect(),
        Some(_) => Err(RequestError::field(field, "must be an object of string values")),
    }
}

/// Categories as an array of strings (or one string); repeats are dropped, as SendGrid
/// requires them distinct.
fn categories(value: Option<&Value>) -> Result<Vec<String>, RequestError> {
    let items: &[Value] = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(single @ Value::String(_)) => std::slice::from_ref(single),
        Some(_) => {
            return Err(RequestError::field("categories", "must be an array of strings"));
        }
    };
    let mut distinct = Vec::new();
    for (position, item) in items.iter().enumerate() {
        let path = || format!("categories[{position}]");
        let Value::String(category) = item else {
            return Err(RequestError::field(path(), "must be a string"));
        };
        if category.trim().is_empty() {
            return Err(RequestError::field(path(), "must not be blank"));
        }
        if category.chars().count() > MAX_CATEGORY_CHARS {
            return Err(RequestError::field(
                path(),
                format!("longer than {MAX_CATEGORY_CHARS} characters, SendGrid's limit"),
            ));
        }
        if !distinct.contains(category) {
            distinct.push(category.clone());
        }
    }
    if distinct.len() > MAX_CATEGORIES {
        return Err(RequestError::field(
            "categories",
            format!("{} distinct categories; SendGrid accepts at most {MAX_CATEGORIES}", distinct.len()),
        ));
    }
    Ok(distinct)
}

fn drop_repeated_recipients(request: &mut MailRequest) {
    let mut seen = HashSet::new();
    for list in [&mut request.to, &mut request.cc, &mut request.bcc] {
        list.retain(|mailbox| seen.insert(mailbox.email.to_lowercase()));
    }
}

fn check_recipient_count(request: &MailRequest) -> Result<(), RequestError> {
    let count = request.recipients().count();
    if count > MAX_RECIPIENTS {
        let field = request.form.to_field();
        return Err(RequestError::field(
            field,
            format!(
                "too many recipients: {count} distinct addresses ({field}, cc and bcc together); \
                 SendGrid accepts at most {MAX_RECIPIENTS} per request"
            ),
        ));
    }
    Ok(())
}

fn optional_string<'a>(fields: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, RequestError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(RequestError::field(key, "must be a string")),
    }
}

/// A string that must be present and not blank.
fn required_string<'a>(fields: &'a Map<String, Value>, key: &str) -> Result<&'a str, RequestError> {
    match optional_string(fields, key)? {
        Some(text) if !text.trim().is_empty() => Ok(text),
        _ => Err(RequestError::field(key, "required")),
    }
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.filter(|text| !text.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<MailRequest, RequestError> {
        parse_mail_request(body.to_string().as_bytes())
    }

    fn reason(body: Value) -> String {
        match parse(body) {
            Ok(request) => panic!("expected a failure, got {request:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn mailbox(email: &str, name: Option<&str>) -> Mailbox {
        Mailbox { email: email.to_owned(), name: name.map(str::to_owned) }
    }

    fn minimal_sluice() -> Value {
        json!({"from": "a@example.com", "to": "b@example.com", "subject": "Hi", "text": "Hello"})
    }

    fn with(mut body: Value, key: &str, value: Value) -> Value {
        body[key] = value;
        body
    }

    #[test]
    fn sluice_form_with_every_field() {
        let request = parse(json!({
            "from": {"email": "shop@example.com", "name": "Shop"},
            "to": ["ann@example.com", {"email": "bob@example.com", "name": "Bob"}],
            "cc": "carl@example.com",
            "bcc": [{"email": "dora@example.com"}],
            "subject": "Your order",
            "text": "Thanks",
            "html": "<p>Thanks</p>",
            "custom_args": {"order_id": "42"},
            "categories": ["orders", "receipts"]
        }));
        assert_eq!(
            request,
            Ok(MailRequest {
                form: RequestForm::Sluice,
                from: mailbox("shop@example.com", Some("Shop")),
                to: vec![mailbox("ann@example.com", None), mailbox("bob@example.com", Some("Bob"))],
                cc: vec![mailbox("carl@example.com", None)],
                bcc: vec![mailbox("dora@example.com", None)],
                subject: "Your order".to_owned(),
                text: Some("Thanks".to_owned()),
                html: Some("<p>Thanks</p>".to_owned()),
                custom_args: BTreeMap::from([("order_id".to_owned(), "42".to_owned())]),
                categories: vec!["orders".to_owned(), "receipts".to_owned()],
            })
        );
    }

    #[test]
    fn original_form_splits_addresses_and_detects_html() {
        let request = parse(json!({
            "senderName": "Shop",
            "fromAddress": "shop@example.com",
            "toAddress": "ann@example.com, bob@example.com,",
            "subject": "Your order",
            "content": "  <p>Thanks</p>",
            "customArgs": {"order_id": "42"}
        }));
        let Ok(request) = request else {
            panic!("expected a request, got {request:?}");
        };
        assert_eq!(request.form, RequestForm::Original);
        assert_eq!(request.from, mailbox("shop@example.com", Some("Shop")));
        assert_eq!(request.to, vec![mailbox("ann@example.com", None), mailbox("bob@example.com", None)]);
        assert_eq!(request.text, None);
        assert_eq!(request.html.as_deref(), Some("  <p>Thanks</p>"));
    }

    #[test]
    fn original_form_content_without_a_tag_is_plain_text() {
        let request = parse(json!({
            "fromAddress": "shop@example.com",
            "toAddress": ["ann@example.com"],
            "subject": "Hi",
            "content": "Plain words < and tags later <b>"
        }));
        let Ok(request) = request else {
            panic!("expected a request, got {request:?}");
        };
        assert_eq!(request.from.name, None);
        assert_eq!(request.text.as_deref(), Some("Plain words < and tags later <b>"));
        assert_eq!(request.html, None);
    }

    #[test]
    fn mixing_forms_is_refused_naming_a_field_of_each() {
        let body = with(minimal_sluice(), "toAddress", json!("c@example.com"));
        assert_eq!(
            reason(body),
            "the body mixes the sluice form (`from`) with the original service's form \
             (`toAddress`); send one form only"
        );
    }

    #[test]
    fn unknown_field_is_refused() {
        let body = with(minimal_sluice(), "attachments", json!([]));
        assert!(reason(body).starts_with("attachments: unknown field; a mail request has from"));
    }

    #[test]
    fn body_must_be_a_json_object() {
        assert_eq!(reason(json!(["a@example.com"])), "expected a JSON object, found an array");
        let error = parse_mail_request(b"{not json").unwrap_err();
        assert!(error.to_string().starts_with("not valid JSON: "));
    }

    #[test]
    fn bad_address_is_reported_at_its_position() {
        let body = with(
            minimal_sluice(),
            "to",
            json!(["b@example.com", {"email": "c@example.com"}, "not-an-address"]),
        );
        assert_eq!(reason(body), "to[2]: not a valid email address: no @");
        let body = json!({
            "fromAddress": "shop@example.com",
            "toAddress": "ann@example.com,,bob@localhost",
            "subject": "Hi",
            "content": "x"
        });
        assert_eq!(reason(body), "toAddress[2]: not a valid email address: the domain has no dot");
    }

    #[test]
    fn single_address_string_is_reported_without_an_index() {
        let body = with(minimal_sluice(), "to", json!("b@@example.com"));
        assert_eq!(reason(body), "to: not a valid email address: more than one @");
    }

    #[test]
    fn address_object_problems_name_the_inner_field() {
        let body = with(minimal_sluice(), "from", json!({"name": "Shop"}));
        assert_eq!(reason(body), "from.email: required");
        let body = with(minimal_sluice(), "cc", json!([{"email": "c@example.com", "nme": "C"}]));
        assert_eq!(reason(body), "cc[0].nme: unknown field; an address object has email and name");
        let body =
            with(minimal_sluice(), "from", json!({"email": "a@example.com", "name": "A\r\nBcc: x@y.z"}));
        assert_eq!(reason(body), "from.name: must be a single line");
        let body = with(minimal_sluice(), "bcc", json!(7));
        assert!(reason(body).starts_with("bcc: must be an address"));
    }

    #[test]
    fn from_and_recipients_are_required() {
        let mut body = minimal_sluice();
        body.as_object_mut().map(|fields| fields.remove("from"));
        assert_eq!(reason(body), "from: required");
        let body = with(minimal_sluice(), "to", json!([]));
        assert_eq!(reason(body), "to: at least one recipient required");
        let body = with(minimal_sluice(), "to", json!(" , "));
        assert_eq!(reason(body), "to: at least one recipient required");
    }

    #[test]
    fn repeated_recipients_are_dropped_keeping_the_first() {
        let body = json!({
            "from": "a@example.com",
            "to": ["b@example.com", "B@Example.com"],
            "cc": ["b@example.com", "c@example.com"],
            "bcc": ["C@example.com", "d@example.com"],
            "subject": "Hi",
            "text": "x"
        });
        let Ok(request) = parse(body) else {
            panic!("expected a request");
        };
        assert_eq!(request.to, vec![mailbox("b@example.com", None)]);
        assert_eq!(request.cc, vec![mailbox("c@example.com", None)]);
        assert_eq!(request.bcc, vec![mailbox("d@example.com", None)]);
    }

    #[test]
    fn more_than_a_thousand_distinct_recipients_are_refused() {
        let addresses = |prefix: &str, count: usize| -> Vec<String> {
            (0..count).map(|n| format!("{prefix}{n}@example.com")).collect()
        };
        let body = json!({
            "from": "a@example.com",
            "to": addresses("to", 600),
            "bcc": addresses("bcc", 400),
            "subject": "Hi",
            "text": "x"
        });
        assert!(parse(body.clone()).is_ok(), "exactly 1000 is allowed");
        let body = with(body, "cc", json!(["one-more@example.com", "to0@example.com"]));
        assert_eq!(
            reason(body),
            "to: too many recipients: 1001 distinct addresses (to, cc and bcc together); \
             SendGrid accepts at most 1000 per request"
        );
    }

    #[test]
    fn subject_is_required_single_line_and_bounded() {
        let body = with(minimal_sluice(), "subject", json!("  "));
        assert_eq!(reason(body), "subject: required");
        let body = with(minimal_sluice(), "subject", json!(12));
        assert_eq!(reason(body), "subject: must be a string");
        let body = with(minimal_sluice(), "subject", json!("Hi\nBcc: x@y.z"));
        assert_eq!(reason(body), "subject: must be a single line");
        let body = with(minimal_sluice(), "subject", json!("é".repeat(998)));
        assert!(parse(body).is_ok(), "998 characters is allowed");
        let body = with(minimal_sluice(), "subject", json!("x".repeat(999)));
        assert_eq!(
            reason(body),
            "subject: longer than 998 characters, the longest header line RFC 5322 allows"
        );
    }

    #[test]
    fn content_is_required() {
        let body = with(minimal_sluice(), "text", json!(""));
        assert_eq!(reason(body), "text: text or html required");
        let body = with(with(minimal_sluice(), "text", Value::Null), "html", json!("<b>x</b>"));
        assert!(parse(body).is_ok());
        let body = json!({"fromAddress": "a@example.com", "toAddress": "b@example.com", "subject": "Hi"});
        assert_eq!(reason(body), "content: required");
    }

    #[test]
    fn custom_args_must_be_strings() {
        let body = with(minimal_sluice(), "custom_args", json!({"order_id": 42}));
        assert_eq!(
            reason(body),
            "custom_args.order_id: must be a string (SendGrid carries custom args as strings)"
        );
        let body = json!({
            "fromAddress": "a@example.com", "toAddress": "b@example.com",
            "subject": "Hi", "content": "x", "customArgs": ["x"]
        });
        assert_eq!(reason(body), "customArgs: must be an object of string values");
    }

    #[test]
    fn categories_are_deduplicated_and_bounded() {
        let body = with(minimal_sluice(), "categories", json!(["a", "b", "a"]));
        let Ok(request) = parse(body) else {
            panic!("expected a request");
        };
        assert_eq!(request.categories, vec!["a".to_owned(), "b".to_owned()]);

        let body = with(minimal_sluice(), "categories", json!("single"));
        assert_eq!(parse(body).map(|request| request.categories), Ok(vec!["single".to_owned()]));

        let eleven: Vec<String> = (0..11).map(|n| format!("c{n}")).collect();
        let body = with(minimal_sluice(), "categories", json!(eleven));
        assert_eq!(reason(body), "categories: 11 distinct categories; SendGrid accepts at most 10");
        let body = with(minimal_sluice(), "categories", json!(["ok", 3]));
        assert_eq!(reason(body), "categories[1]: must be a string");
        let body = with(minimal_sluice(), "categories", json!(["x".repeat(256)]));
        assert_eq!(reason(body), "categories[0]: longer than 255 characters, SendGrid's limit");
    }
}
