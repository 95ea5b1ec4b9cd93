//! The answer to the caller of a request/reply pipeline: the mail id, so the caller can join
//! the webhook events of this mail back to its request. The host answers with this record as
//! it is (plus what its sinks report), so it names no field of its own.

use serde::Serialize;
use sluice_plugin_sdk::schema::{Column, ColumnType};

/// The output that carries the answer.
pub const OUTPUT: &str = "reply";

/// The fields of a [`Reply`], in the order it serializes them.
pub const COLUMNS: &[Column] = &[Column::required("mail_id", ColumnType::Text)];

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
        let mut rows = sluice_plugin_sdk::OutputRows::new(OUTPUT, COLUMNS);
        rows.push(0, None, &Reply { mail_id: "m-1" }).unwrap();
        let info = sluice_plugin_sdk::OutputInfo::new(OUTPUT, COLUMNS);
        let rendered = sluice_plugin_sdk::render::rows_json(&info, &rows.finish()).unwrap();
        assert_eq!(rendered, [r#"{"mail_id":"m-1"}"#]);
    }
}
