//! The `status_logs` record and which of its entries become `user_status_log` rows.
//!
//! - The record must be an object whose `userId` is a string and whose `statusLogs` is an
//!   array; otherwise the whole record fails and gives no rows.
//! - Each entry must be an object whose `status` is a non-empty string and whose `updatedOn`
//!   is an integer (written as its decimal text) or a string (kept as is): the
//!   `user_status_log.updatedOn` column is varchar, and the source uses both forms.
//! - A record with any bad entry fails whole: it gives no rows, and one failure lists every
//!   bad entry, so the dead letter shows everything to fix and the record is reported once.
//!   Keeping the good entries back is what makes replaying the fixed dead letter safe: the
//!   `user_status_log` table has no key to deduplicate on, so rows written on the first pass
//!   would be inserted again.
//! - An empty `statusLogs` gives no rows and no failure. Unknown fields are ignored.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use sluice_plugin_sdk::json::{kind, parse_object, string_content};

/// One good entry of a user's status history.
#[derive(Debug, PartialEq)]
pub struct StatusLogEntry<'a> {
    pub updated_on: Cow<'a, str>,
    pub status: Cow<'a, str>,
}

/// A `status_logs` record taken apart, every entry of it good.
#[derive(Debug, PartialEq)]
pub struct ExplodedRecord<'a> {
    pub user_id: Cow<'a, str>,
    pub entries: Vec<StatusLogEntry<'a>>,
}

#[derive(Deserialize)]
struct RecordFields<'a> {
    #[serde(rename = "userId", borrow, default)]
    user_id: Option<&'a RawValue>,
    #[serde(rename = "statusLogs", borrow, default)]
    status_logs: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EntryFields<'a> {
    #[serde(borrow, default)]
    status: Option<&'a RawValue>,
    #[serde(rename = "updatedOn", borrow, default)]
    updated_on: Option<&'a RawValue>,
}

/// Takes one `status_logs` record apart into its entries, all of them or none.
///
/// # Errors
/// Why the record is unusable: not a JSON object; `userId` or `statusLogs` missing, null or
/// of the wrong type; or, joined by `; ` in entry order, a `statusLogs[i]...: problem` for
/// every bad entry.
pub fn explode(bytes: &[u8]) -> Result<ExplodedRecord<'_>, String> {
    let fields: RecordFields = parse_object(bytes)?;
    let user_id = match fields.user_id {
        None => return Err("userId: missing or null".to_owned()),
        Some(raw) => {
            string_content(raw).ok_or_else(|| format!("userId: expected a string, found {}", kind(raw)))?
        }
    };
    let raw_entries: Vec<&RawValue> = match fields.status_logs {
        None => return Err("statusLogs: missing or null".to_owned()),
        Some(raw) if raw.get().starts_with('[') => serde_json::from_str(raw.get())
            .map_err(|error| format!("statusLogs: not a valid array: {error}"))?,
        Some(raw) => return Err(format!("statusLogs: expected an array, found {}", kind(raw))),
    };
    let mut entries = Vec::with_capacity(raw_entries.len());
    let mut problems = Vec::new();
    for (position, raw) in raw_entries.into_iter().enumerate() {
        match entry(raw) {
            Ok(entry) => entries.push(entry),
            Err(problem) => problems.push(format!("statusLogs[{position}]{problem}")),
        }
    }
    if problems.is_empty() { Ok(ExplodedRecord { user_id, entries }) } else { Err(problems.join("; ")) }
}

/// Checks one entry; a problem is returned as the rest of its path (`.status: empty`).
fn entry(raw: &RawValue) -> Result<StatusLogEntry<'_>, String> {
    if !raw.get().starts_with('{') {
        return Err(format!(": expected an object, found {}", kind(raw)));
    }
    let fields: EntryFields = serde_json::from_str(raw.get()).map_err(|error| format!(": {error}"))?;
    let status = match fields.status {
        None => return Err(".status: missing or null".to_owned()),
        Some(raw) => match string_content(raw) {
            None => return Err(format!(".status: expected a string, found {}", kind(raw))),
            Some(status) if status.is_empty() => return Err(".status: empty".to_owned()),
            Some(status) => status,
        },
    };
    let updated_on = match fields.updated_on {
        None => return Err(".updatedOn: missing or null".to_owned()),
        Some(raw) => updated_on_text(raw)?,
    };
    Ok(StatusLogEntry { updated_on, status })
}

/// `updatedOn` as the varchar column holds it.
fn updated_on_text(raw: &RawValue) -> Result<Cow<'_, str>, String> {
    if let Some(text) = string_content(raw) {
        return Ok(text);
    }
    let is_number = raw.get().starts_with(|first: char| first == '-' || first.is_ascii_digit());
    if !is_number {
        return Err(format!(".updatedOn: expected an integer or a string, found {}", kind(raw)));
    }
    // JSON integers have no leading zeros or `+`, so a literal that parses is already the
    // decimal text to store.
    match raw.get().parse::<i64>() {
        Ok(_) => Ok(Cow::Borrowed(raw.get())),
        Err(_) => Err(format!(".updatedOn: not a 64-bit integer: {}", raw.get())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries_of(text: &str) -> Vec<(String, String)> {
        let exploded = explode(text.as_bytes()).unwrap();
        exploded.entries.into_iter().map(|e| (e.updated_on.into(), e.status.into())).collect()
    }

    fn reason_of(text: &str) -> String {
        explode(text.as_bytes()).unwrap_err()
    }

    fn pair(updated_on: &str, status: &str) -> (String, String) {
        (updated_on.to_owned(), status.to_owned())
    }

    #[test]
    fn every_entry_becomes_a_row_in_order() {
        let text = r#"{"userId":"0000","statusLogs":[{"status":"INITIATED","updatedOn":1644527391},{"updatedOn":"2022-02-11","status":"VERIFIED"}]}"#;
        assert_eq!(explode(text.as_bytes()).unwrap().user_id, "0000");
        assert_eq!(entries_of(text), [pair("1644527391", "INITIATED"), pair("2022-02-11", "VERIFIED")]);
    }

    #[test]
    fn empty_list_gives_no_rows_and_no_problem() {
        assert_eq!(entries_of(r#"{"userId":"0000","statusLogs":[]}"#), []);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let text = r#"{"userId":"0","extra":1,"statusLogs":[{"status":"A","updatedOn":-7,"by":"x"}]}"#;
        assert_eq!(entries_of(text), [pair("-7", "A")]);
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let text = r#"{"userId":"a\"b","statusLogs":[{"status":"\u00e9","updatedOn":"x\\y"}]}"#;
        assert_eq!(explode(text.as_bytes()).unwrap().user_id, "a\"b");
        assert_eq!(entries_of(text), [pair("x\\y", "é")]);
    }

    #[test]
    fn any_bad_entry_fails_the_record_naming_every_bad_entry() {
        let text = r#"{"userId":"0","statusLogs":[{"status":"A","updatedOn":1},{"updatedOn":2},"B",{"status":"C","updatedOn":null},{"status":"D","updatedOn":4}]}"#;
        assert_eq!(
            reason_of(text),
            "statusLogs[1].status: missing or null; statusLogs[2]: expected an object, found a string; statusLogs[3].updatedOn: missing or null"
        );
    }

    #[test]
    fn one_bad_entry_among_good_ones_fails_the_record() {
        let text = r#"{"userId":"0","statusLogs":[{"status":"A","updatedOn":1},{"status":"B","updatedOn":2},{"status":"C"}]}"#;
        assert_eq!(reason_of(text), "statusLogs[2].updatedOn: missing or null");
    }

    #[test]
    fn entry_status_must_be_a_non_empty_string() {
        let text = r#"{"userId":"0","statusLogs":[{"status":"","updatedOn":1},{"status":5,"updatedOn":1}]}"#;
        assert_eq!(
            reason_of(text),
            "statusLogs[0].status: empty; statusLogs[1].status: expected a string, found a number"
        );
    }

    #[test]
    fn updated_on_must_be_an_integer_or_a_string() {
        let text = r#"{"userId":"0","statusLogs":[{"status":"A","updatedOn":1.5},{"status":"A","updatedOn":1e3},{"status":"A","updatedOn":99999999999999999999},{"status":"A","updatedOn":true},{"status":"A","updatedOn":[1]}]}"#;
        assert_eq!(
            reason_of(text),
            [
                "statusLogs[0].updatedOn: not a 64-bit integer: 1.5",
                "statusLogs[1].updatedOn: not a 64-bit integer: 1e3",
                "statusLogs[2].updatedOn: not a 64-bit integer: 99999999999999999999",
                "statusLogs[3].updatedOn: expected an integer or a string, found a boolean",
                "statusLogs[4].updatedOn: expected an integer or a string, found an array",
            ]
            .join("; ")
        );
    }

    #[test]
    fn repeated_entry_field_is_a_problem() {
        let text = r#"{"userId":"0","statusLogs":[{"status":"A","status":"B","updatedOn":1}]}"#;
        let reason = reason_of(text);
        assert!(reason.starts_with("statusLogs[0]: duplicate field `status`"), "{reason}");
        assert!(!reason.contains("; "), "one problem only: {reason}");
    }

    #[test]
    fn all_good_entries_give_the_record() {
        let exploded = explode(br#"{"userId":"0","statusLogs":[{"status":"A","updatedOn":1}]}"#);
        assert_eq!(
            exploded,
            Ok(ExplodedRecord {
                user_id: "0".into(),
                entries: vec![StatusLogEntry { updated_on: "1".into(), status: "A".into() }]
            })
        );
    }

    #[test]
    fn record_without_a_usable_user_id_fails_whole() {
        let cases = [
            (r#"{"statusLogs":[]}"#, "userId: missing or null"),
            (r#"{"userId":null,"statusLogs":[]}"#, "userId: missing or null"),
            (r#"{"userId":7,"statusLogs":[]}"#, "userId: expected a string, found a number"),
        ];
        for (text, reason) in cases {
            assert_eq!(explode(text.as_bytes()).unwrap_err(), reason, "{text}");
        }
    }

    #[test]
    fn record_without_a_usable_list_fails_whole() {
        let cases = [
            (r#"{"userId":"0"}"#, "statusLogs: missing or null"),
            (r#"{"userId":"0","statusLogs":null}"#, "statusLogs: missing or null"),
            (r#"{"userId":"0","statusLogs":{"a":1}}"#, "statusLogs: expected an array, found an object"),
            (r#"{"userId":"0","statusLogs":"[]"}"#, "statusLogs: expected an array, found a string"),
        ];
        for (text, reason) in cases {
            assert_eq!(explode(text.as_bytes()).unwrap_err(), reason, "{text}");
        }
    }

    #[test]
    fn input_that_is_not_an_object_fails_whole() {
        assert_eq!(explode(b"[]").unwrap_err(), "expected a JSON object, found an array");
        assert!(explode(b"{").unwrap_err().starts_with("not valid JSON: EOF"));
    }
}
