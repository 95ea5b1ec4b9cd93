//! The answer to the caller of a request/reply pipeline: the mail id, so the caller can join
//! the webhook events of this mail back to its request. The host answers with this record as
//! it is (plus what its sinks report), so it names no field of its own.

use serde::Serialize;
use sluice_plugin_sdk::schema::{Column, ColumnType};

/// The output that carries the answer.
pub const OUTPUT: &str = "reply";

/// The fields of a [`Reply`], in the order it serializes them.
pub const COLUMNS: &[Column] = &[Column::required("mail_id", ColumnType::String)];

/// What the caller is told about an accepted mail.
#[derive(Debug, Serialize)]
pub struct Reply<'a> {
    pub mail_id: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_names_the_mail_id_in_its_one_column() {
        let reply = serde_json::to_string(&Reply { mail_id: "m-1" }).unwrap();
        assert_eq!(reply, r#"{"mail_id":"m-1"}"#);
        assert_eq!(sluice_plugin_sdk::schema::top_level_keys(reply.as_bytes()), ["mail_id"]);
        assert_eq!(COLUMNS.iter().map(|c| c.name).collect::<Vec<_>>(), ["mail_id"]);
    }
}
