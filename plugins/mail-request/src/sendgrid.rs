//! The SendGrid v3 `mail/send` body built from a validated request.
//!
//! The shape follows SendGrid's public OpenAPI description (`sendgrid/sendgrid-oai`,
//! `POST /mail/send`): one personalization holding every recipient, message-level `from`,
//! `subject`, `content`, `custom_args` and `categories`, and click/open tracking settings.
//! The record is sent to SendGrid as it is, so optional members are omitted rather than null
//! (SendGrid's schema has no nulls): `categories` is absent when there are none, as are empty
//! `cc` and `bcc`.

use std::collections::BTreeMap;

use std::io;

use serde::Serialize;
use sluice_plugin_sdk::schema::{Column, ColumnType};

use crate::address::Mailbox;
use crate::request::{MailRequest, RequestError};
use crate::settings::MailConfig;

/// The output that carries SendGrid bodies.
pub const OUTPUT: &str = "sendgrid_mail";

/// The fields of a [`SendGridMail`], in the order it serializes them. The host renders a row as
/// the JSON object of its columns, nulls left out, which is the `mail/send` body itself.
pub const COLUMNS: &[Column] = &[
    Column::required("personalizations", ColumnType::Json),
    Column::required("from", ColumnType::Json),
    Column::required("subject", ColumnType::Text),
    Column::required("content", ColumnType::Json),
    Column::required("custom_args", ColumnType::Json),
    Column::nullable("categories", ColumnType::Json),
    Column::required("tracking_settings", ColumnType::Json),
];

/// SendGrid refuses `custom_args` whose keys and values add up to 10,000 bytes or more.
pub const CUSTOM_ARGS_BYTES_LIMIT: usize = 10_000;
/// SendGrid refuses messages of 30 MB or more; the decimal reading is the stricter one.
pub const MESSAGE_BYTES_LIMIT: usize = 30_000_000;

/// A `mail/send` request body, borrowing from the request it was built from.
#[derive(Debug, Serialize)]
pub struct SendGridMail<'a> {
    personalizations: [Personalization<'a>; 1],
    from: &'a Mailbox,
    subject: &'a str,
    content: Vec<Content<'a>>,
    custom_args: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    categories: Option<&'a [String]>,
    tracking_settings: TrackingSettings,
}

#[derive(Debug, Serialize)]
struct Personalization<'a> {
    to: &'a [Mailbox],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    cc: &'a [Mailbox],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    bcc: &'a [Mailbox],
}

#[derive(Debug, Serialize)]
struct Content<'a> {
    #[serde(rename = "type")]
    mime_type: &'static str,
    value: &'a str,
}

#[derive(Debug, Serialize)]
struct TrackingSettings {
    click_tracking: Setting,
    open_tracking: Setting,
}

#[derive(Debug, Serialize)]
struct Setting {
    enable: bool,
}

/// Builds the body for `request`, adding `mail_id` to its custom args.
///
/// # Errors
/// The request already uses the mail id's custom arg, or the custom args reach SendGrid's
/// size limit once the mail id is added.
pub fn build_sendgrid_mail<'a>(
    request: &'a MailRequest,
    mail_id: &'a str,
    config: &'a MailConfig,
) -> Result<SendGridMail<'a>, RequestError> {
    let custom_args_field = request.form.custom_args_field();
    let mail_id_arg = config.mail_id_arg.as_str();
    if request.custom_args.contains_key(mail_id_arg) {
        return Err(RequestError::field(
            format!("{custom_args_field}.{mail_id_arg}"),
            "reserved for the mail id sluice adds",
        ));
    }
    let mut custom_args: BTreeMap<&str, &str> =
        request.custom_args.iter().map(|(key, value)| (key.as_str(), value.as_str())).collect();
    custom_args.insert(mail_id_arg, mail_id);
    let custom_args_bytes: usize = custom_args.iter().map(|(key, value)| key.len() + value.len()).sum();
    if custom_args_bytes >= CUSTOM_ARGS_BYTES_LIMIT {
        return Err(RequestError::field(
            custom_args_field,
            format!(
                "{custom_args_bytes} bytes of keys and values with the mail id; \
                 SendGrid accepts less than {CUSTOM_ARGS_BYTES_LIMIT}"
            ),
        ));
    }

    // SendGrid requires text/plain before text/html.
    let content = [("text/plain", request.text.as_deref()), ("text/html", request.html.as_deref())]
        .into_iter()
        .filter_map(|(mime_type, value)| value.map(|value| Content { mime_type, value }))
        .collect();

    Ok(SendGridMail {
        personalizations: [Personalization { to: &request.to, cc: &request.cc, bcc: &request.bcc }],
        from: &request.from,
        subject: &request.subject,
        content,
        custom_args,
        categories: (!request.categories.is_empty()).then_some(request.categories.as_slice()),
        tracking_settings: TrackingSettings {
            click_tracking: Setting { enable: config.click_tracking },
            open_tracking: Setting { enable: config.open_tracking },
        },
    })
}

/// Refuses a body SendGrid would reject for its size, measuring its JSON text without keeping it.
///
/// # Errors
/// The body reaches [`MESSAGE_BYTES_LIMIT`].
pub fn check_message_size(mail: &SendGridMail) -> Result<(), RequestError> {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, mail)
        .map_err(|error| RequestError::Request(format!("could not encode the SendGrid request: {error}")))?;
    if counter.0 >= MESSAGE_BYTES_LIMIT {
        return Err(RequestError::Request(format!(
            "message is {} bytes as a SendGrid request; SendGrid accepts less than 30 MB",
            counter.0
        )));
    }
    Ok(())
}

/// A writer that only counts the bytes written to it.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(bytes.len());
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use sluice_plugin_sdk::render::rows_json;
    use sluice_plugin_sdk::{OutputInfo, OutputRows};

    use super::*;
    use crate::request::parse_mail_request;

    fn request(body: Value) -> MailRequest {
        match parse_mail_request(body.to_string().as_bytes()) {
            Ok(request) => request,
            Err(error) => panic!("test request is invalid: {error}"),
        }
    }

    /// The body as the host sends it: the row rendered as a JSON object, after the size check.
    fn encoded(request: &MailRequest, config: &MailConfig) -> Result<Vec<u8>, RequestError> {
        let mail = build_sendgrid_mail(request, "id-1", config)?;
        check_message_size(&mail)?;
        let mut rows = OutputRows::new(OUTPUT, COLUMNS);
        rows.push(0, Some(b"id-1"), &mail).map_err(|error| RequestError::Request(error.to_string()))?;
        let rendered =
            rows_json(&OutputInfo::new(OUTPUT, COLUMNS), &rows.finish()).map_err(RequestError::Request)?;
        Ok(rendered.concat().into_bytes())
    }

    fn encoded_json(request: &MailRequest, config: &MailConfig) -> Value {
        let body = encoded(request, config).unwrap_or_default();
        serde_json::from_slice(&body).unwrap_or_default()
    }

    fn full_request() -> MailRequest {
        request(json!({
            "from": {"email": "shop@example.com", "name": "Shop"},
            "to": ["ann@example.com"],
            "cc": ["carl@example.com"],
            "subject": "Your order",
            "html": "<p>Thanks</p>",
            "text": "Thanks",
            "custom_args": {"order_id": "42"},
            "categories": ["orders"]
        }))
    }

    #[test]
    fn body_has_the_mail_send_shape() {
        assert_eq!(
            encoded_json(&full_request(), &MailConfig::default()),
            json!({
                "personalizations": [{
                    "to": [{"email": "ann@example.com"}],
                    "cc": [{"email": "carl@example.com"}]
                }],
                "from": {"email": "shop@example.com", "name": "Shop"},
                "subject": "Your order",
                "content": [
                    {"type": "text/plain", "value": "Thanks"},
                    {"type": "text/html", "value": "<p>Thanks</p>"}
                ],
                "custom_args": {"mail_id": "id-1", "order_id": "42"},
                "categories": ["orders"],
                "tracking_settings": {
                    "click_tracking": {"enable": true},
                    "open_tracking": {"enable": true}
                }
            })
        );
    }

    #[test]
    fn the_rendered_row_is_the_body_serde_writes() {
        for request in [
            full_request(),
            request(json!({"from": "a@example.com", "to": "b@example.com", "subject": "Hi", "text": "x"})),
        ] {
            let config = MailConfig::default();
            let body = encoded(&request, &config).unwrap_or_default();
            let direct =
                serde_json::to_vec(&build_sendgrid_mail(&request, "id-1", &config).unwrap()).unwrap();
            assert_eq!(String::from_utf8_lossy(&body), String::from_utf8_lossy(&direct));
        }
    }

    #[test]
    fn optional_members_are_omitted_not_null() {
        let request = request(json!({
            "from": "a@example.com", "to": "b@example.com", "subject": "Hi", "html": "<b>x</b>"
        }));
        let body = encoded_json(&request, &MailConfig::default());
        assert_eq!(body.get("categories"), None);
        assert_eq!(body["personalizations"], json!([{"to": [{"email": "b@example.com"}]}]));
        assert_eq!(body["content"], json!([{"type": "text/html", "value": "<b>x</b>"}]));
    }

    #[test]
    fn config_names_the_mail_id_arg_and_tracking() {
        let config =
            MailConfig { mail_id_arg: "request_id".to_owned(), click_tracking: false, open_tracking: true };
        let body = encoded_json(&full_request(), &config);
        assert_eq!(body["custom_args"], json!({"order_id": "42", "request_id": "id-1"}));
        assert_eq!(
            body["tracking_settings"],
            json!({"click_tracking": {"enable": false}, "open_tracking": {"enable": true}})
        );
    }

    #[test]
    fn caller_cannot_set_the_mail_id_arg() {
        let request = request(json!({
            "fromAddress": "a@example.com", "toAddress": "b@example.com", "subject": "Hi",
            "content": "x", "customArgs": {"mail_id": "spoofed"}
        }));
        let error = encoded(&request, &MailConfig::default()).unwrap_err();
        assert_eq!(error.to_string(), "customArgs.mail_id: reserved for the mail id sluice adds");
    }

    #[test]
    fn custom_args_limit_counts_the_mail_id() {
        // "big" + value + "mail_id" + "id-1" = 3 + n + 7 + 4 bytes.
        let fits = request(json!({
            "from": "a@example.com", "to": "b@example.com", "subject": "Hi", "text": "x",
            "custom_args": {"big": "v".repeat(9_985)}
        }));
        assert!(encoded(&fits, &MailConfig::default()).is_ok());
        let too_big = request(json!({
            "from": "a@example.com", "to": "b@example.com", "subject": "Hi", "text": "x",
            "custom_args": {"big": "v".repeat(9_986)}
        }));
        assert_eq!(
            encoded(&too_big, &MailConfig::default()).unwrap_err().to_string(),
            "custom_args: 10000 bytes of keys and values with the mail id; \
             SendGrid accepts less than 10000"
        );
    }

    #[test]
    fn message_of_30_mb_is_refused() {
        let request = request(json!({
            "from": "a@example.com", "to": "b@example.com", "subject": "Hi",
            "html": "x".repeat(MESSAGE_BYTES_LIMIT)
        }));
        let error = encoded(&request, &MailConfig::default()).unwrap_err();
        assert!(
            error.to_string().starts_with("message is 300")
                && error.to_string().ends_with("SendGrid accepts less than 30 MB"),
            "{error}"
        );
    }
}
