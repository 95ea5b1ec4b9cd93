//! The log row kept for every accepted mail, so a mail id can be traced to who sent what.

use serde::Serialize;
use sluice_plugin_sdk::schema::{Column, ColumnType};

use crate::request::MailRequest;

/// The output that carries mail log rows.
pub const OUTPUT: &str = "mail_log";

/// The fields of a [`MailLogEntry`], in the order it serializes them.
pub const COLUMNS: &[Column] = &[
    Column::required("mail_id", ColumnType::String),
    Column::required("from", ColumnType::String),
    Column::required("recipients", ColumnType::ListString),
    Column::required("subject", ColumnType::String),
];

/// One accepted mail: its id, sender address, every recipient address and subject.
#[derive(Debug, Serialize)]
pub struct MailLogEntry<'a> {
    mail_id: &'a str,
    from: &'a str,
    /// to, cc and bcc together, in that order.
    recipients: Vec<&'a str>,
    subject: &'a str,
}

impl<'a> MailLogEntry<'a> {
    /// The log row for `request` sent under `mail_id`.
    pub fn new(request: &'a MailRequest, mail_id: &'a str) -> Self {
        MailLogEntry {
            mail_id,
            from: &request.from.email,
            recipients: request.recipients().map(|mailbox| mailbox.email.as_str()).collect(),
            subject: &request.subject,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sluice_plugin_sdk::schema::top_level_keys;

    use super::*;
    use crate::request::parse_mail_request;

    #[test]
    fn entry_lists_every_recipient_in_schema_order() {
        let body = json!({
            "from": {"email": "shop@example.com", "name": "Shop"},
            "to": "ann@example.com",
            "cc": "carl@example.com",
            "bcc": "dora@example.com",
            "subject": "Your order",
            "text": "Thanks"
        });
        let request = match parse_mail_request(body.to_string().as_bytes()) {
            Ok(request) => request,
            Err(error) => panic!("test request is invalid: {error}"),
        };
        let encoded = serde_json::to_vec(&MailLogEntry::new(&request, "id-1")).unwrap_or_default();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&encoded).ok(),
            Some(json!({
                "mail_id": "id-1",
                "from": "shop@example.com",
                "recipients": ["ann@example.com", "carl@example.com", "dora@example.com"],
                "subject": "Your order"
            }))
        );
        let column_names: Vec<&str> = COLUMNS.iter().map(|column| column.name).collect();
        assert_eq!(top_level_keys(&encoded), column_names);
    }
}
