//! The log row kept for every accepted mail, so a mail id can be traced to who sent what.

use serde::Serialize;
use sluice_plugin_sdk::schema::{Column, ColumnType};

use crate::request::MailRequest;

/// The output that carries mail log rows.
pub const OUTPUT: &str = "mail_log";

/// The fields of a [`MailLogEntry`], in the order it serializes them.
pub const COLUMNS: &[Column] = &[
    Column::required("mail_id", ColumnType::Text),
    Column::required("from", ColumnType::Text),
    Column::required("recipients", ColumnType::TextList),
    Column::required("subject", ColumnType::Text),
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
    use sluice_plugin_sdk::render::rows_json;
    use sluice_plugin_sdk::{OutputInfo, OutputRows};

    use super::*;
    use crate::request::parse_mail_request;

    #[test]
    fn entry_lists_every_recipient_in_column_order() {
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
        let mut rows = OutputRows::new(OUTPUT, COLUMNS);
        rows.push(0, None, &MailLogEntry::new(&request, "id-1")).unwrap();
        let rendered = rows_json(&OutputInfo::new(OUTPUT, COLUMNS), &rows.finish()).unwrap();
        assert_eq!(
            rendered,
            [
                r#"{"mail_id":"id-1","from":"shop@example.com","recipients":["ann@example.com","carl@example.com","dora@example.com"],"subject":"Your order"}"#
            ]
        );
    }
}
