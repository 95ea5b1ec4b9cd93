//! The user-status record: what makes it valid, and the error text of an invalid one.
//!
//! A record is valid when all six fields are present, non-null and of the expected type:
//!
//! | field           | expected                                                           |
//! |-----------------|--------------------------------------------------------------------|
//! | `userId`        | a string (any, even empty: only `status` has an emptiness rule)    |
//! | `createdAt`     | a string (kept as text: the table column is varchar)               |
//! | `lastVisitedAt` | an integer literal within PostgreSQL `int` (32-bit) range          |
//! | `status`        | a non-empty string (whitespace counts as content)                  |
//! | `isBlacklisted` | `true` or `false`                                                  |
//! | `statusLogs`    | an array, every entry an object (no other entry gives a log row)   |
//!
//! Wrong types make a record invalid rather than coerced, as the original job's load would
//! have rejected them; `lastVisitedAt` outside 32-bit range would make the whole database
//! load fail, so it becomes an error row instead. An entry of `statusLogs` that is not an
//! object has no `updatedOn` or `status` to explode into a log row, so `explode-status-logs`
//! would dead-letter the logs of a user already written to `user_status`; checking it here
//! keeps every record exactly one of: a `user_status` row with all its log rows, an error
//! row, or a dead letter. What an object entry holds is not checked: as in the original's
//! `explode`, a missing field is a NULL in its log row. Unknown fields are ignored.
//!
//! A record is read once, with the SDK's [`Scanner`]; serde_json reads only the records it
//! stops on (not an object, broken JSON, a field twice, a field name with an escape), so those
//! get serde_json's reasons and its reading.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use sluice_plugin_sdk::json::scan::{Kind, Scanner};
use sluice_plugin_sdk::json::{
    closing_quote, compact_text, is_insignificant_whitespace, parse_object, string_text,
};

/// The names of the six fields, in [`UserStatusFields`]' order.
const NAMES: [&str; 6] = ["userId", "createdAt", "lastVisitedAt", "status", "isBlacklisted", "statusLogs"];

/// The six fields of a user-status record as found in the input, as JSON text; missing and
/// `null` are both `None`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UserStatusFields<'a> {
    pub user_id: Option<&'a str>,
    pub created_at: Option<&'a str>,
    pub last_visited_at: Option<&'a str>,
    pub status: Option<&'a str>,
    pub is_blacklisted: Option<&'a str>,
    pub status_logs: Option<&'a str>,
}

/// The fields as serde_json reads them, for the records the scanner stops on.
#[derive(Debug, Default, Deserialize)]
struct SerdeFields<'a> {
    #[serde(rename = "userId", borrow, default)]
    user_id: Option<&'a RawValue>,
    #[serde(rename = "createdAt", borrow, default)]
    created_at: Option<&'a RawValue>,
    #[serde(rename = "lastVisitedAt", borrow, default)]
    last_visited_at: Option<&'a RawValue>,
    #[serde(borrow, default)]
    status: Option<&'a RawValue>,
    #[serde(rename = "isBlacklisted", borrow, default)]
    is_blacklisted: Option<&'a RawValue>,
    #[serde(rename = "statusLogs", borrow, default)]
    status_logs: Option<&'a RawValue>,
}

/// A record that passed every check, with its fields typed.
#[derive(Debug)]
pub struct ValidUserStatus<'a> {
    pub user_id: Cow<'a, str>,
    pub created_at: Cow<'a, str>,
    pub last_visited_at: i32,
    pub status: Cow<'a, str>,
    pub is_blacklisted: bool,
    /// The JSON array, every entry an object and without insignificant whitespace, passed on
    /// for `explode-status-logs` to read.
    pub status_logs: Cow<'a, str>,
}

impl<'a> UserStatusFields<'a> {
    /// Reads one record.
    ///
    /// # Errors
    /// The dead-letter reason when the record is not one JSON object (see
    /// [`sluice_plugin_sdk::json::parse_object`]).
    pub fn read(value: &'a [u8]) -> Result<Self, String> {
        let text = simdutf8::basic::from_utf8(value).ok();
        if let Some(fields) = text.and_then(scan_fields) {
            return Ok(fields);
        }
        Self::read_with_serde(value)
    }

    /// [`UserStatusFields::read`] by serde_json alone.
    ///
    /// # Errors
    /// As [`UserStatusFields::read`].
    pub fn read_with_serde(value: &'a [u8]) -> Result<Self, String> {
        let fields: SerdeFields = parse_object(value)?;
        Ok(UserStatusFields {
            user_id: fields.user_id.map(RawValue::get),
            created_at: fields.created_at.map(RawValue::get),
            last_visited_at: fields.last_visited_at.map(RawValue::get),
            status: fields.status.map(RawValue::get),
            is_blacklisted: fields.is_blacklisted.map(RawValue::get),
            status_logs: fields.status_logs.map(RawValue::get),
        })
    }

    /// The typed record, or `None` when any rule in the module docs is broken.
    pub fn validate(&self) -> Option<ValidUserStatus<'a>> {
        Some(ValidUserStatus {
            user_id: self.user_id.and_then(string_text)?,
            created_at: self.created_at.and_then(string_text)?,
            last_visited_at: self.last_visited_at.and_then(int32)?,
            status: self.status.and_then(string_text).filter(|status| !status.is_empty())?,
            is_blacklisted: self.is_blacklisted.and_then(boolean)?,
            status_logs: self.status_logs.and_then(array_of_objects)?,
        })
    }

    /// All six fields as one line of text, for the `user_status_error_rec` table.
    ///
    /// The format is the original job's, lowercase `userid` included:
    /// `userid:<v>,createdAt:<v>,lastVisitedAt:<v>,status:<v>,statusLogs:<v>,isBlacklisted:<v>`.
    /// Missing and null read `null`, strings appear without quotes (an empty one as nothing),
    /// anything else as compact JSON text.
    pub fn error_rec(&self) -> String {
        let fields = [
            ("userid", self.user_id),
            ("createdAt", self.created_at),
            ("lastVisitedAt", self.last_visited_at),
            ("status", self.status),
            ("statusLogs", self.status_logs),
            ("isBlacklisted", self.is_blacklisted),
        ];
        let mut text = String::new();
        for (label, value) in fields {
            if !text.is_empty() {
                text.push(',');
            }
            text.push_str(label);
            text.push(':');
            match value {
                None => text.push_str("null"),
                Some(raw) => match string_text(raw) {
                    Some(content) => text.push_str(&content),
                    None => text.push_str(&compact_text(raw)),
                },
            }
        }
        text
    }
}

/// The fields of `text` read in one pass, or `None` where serde_json has to read it: it is
/// not exactly one object, names one of the six fields twice, or has a name with an escape.
fn scan_fields(text: &str) -> Option<UserStatusFields<'_>> {
    let mut scanner = Scanner::new(text);
    let mut found: [Option<&str>; 6] = [None; 6];
    let mut seen = [false; 6];
    scanner.begin_object().ok()?;
    let mut first = true;
    while let Some(name) = scanner.next_key(first).ok()? {
        first = false;
        let name = name.plain_str()?;
        let value = scanner.value().ok()?;
        if let Some(slot) = NAMES.iter().position(|known| *known == name) {
            if std::mem::replace(&mut seen[slot], true) {
                return None;
            }
            found[slot] = (value.kind() != Kind::Null).then_some(value.text());
        }
    }
    scanner.finish().ok()?;
    let [user_id, created_at, last_visited_at, status, is_blacklisted, status_logs] = found;
    Some(UserStatusFields { user_id, created_at, last_visited_at, status, is_blacklisted, status_logs })
}

/// The value of an integer literal that fits a 32-bit column; `1.0`, `1e3` and strings do not.
fn int32(text: &str) -> Option<i32> {
    text.parse().ok()
}

/// `text` without insignificant whitespace when it is a JSON array whose entries are all
/// objects (an empty array is); `None` for anything else.
///
/// One scan of text already checked as JSON: it follows strings and nesting only to find each
/// entry's first byte and any whitespace, instead of parsing the array again into entries and
/// then compacting it. Borrows `text` when it is already compact, which is the common case.
fn array_of_objects(text: &str) -> Option<Cow<'_, str>> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'[') {
        return None;
    }
    let mut depth = 0usize;
    // Whether the next value at depth 1 starts an entry: after `[` or a `,` between entries.
    let mut entry_next = false;
    let mut spaced = false;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => {
                if entry_next && depth == 1 {
                    return None;
                }
                at = closing_quote(bytes, at)?;
            }
            b'{' | b'[' => {
                if entry_next && depth == 1 && byte != b'{' {
                    return None;
                }
                depth += 1;
                entry_next = depth == 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                entry_next = false;
            }
            b',' => entry_next = depth == 1,
            _ if is_insignificant_whitespace(byte) => spaced = true,
            // A number, `true`, `false` or `null`, as an entry or inside one.
            _ => {
                if entry_next && depth == 1 {
                    return None;
                }
            }
        }
        at += 1;
    }
    Some(if spaced { compact_text(text) } else { Cow::Borrowed(text) })
}

fn boolean(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{"userId":"0000","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"VERIFIED","isBlacklisted":false,"statusLogs":[{"status":"INITIATED","updatedOn":1644527391}]}"#;

    /// The record read both ways, checked to agree.
    fn fields(text: &str) -> UserStatusFields<'_> {
        let read = UserStatusFields::read(text.as_bytes()).unwrap();
        assert_eq!(UserStatusFields::read_with_serde(text.as_bytes()), Ok(read), "{text}");
        read
    }

    /// `VALID` with one field's value replaced by `value` (raw JSON), or removed when `None`.
    fn with_field(field: &str, value: Option<&str>) -> String {
        let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(VALID).unwrap();
        match value {
            Some(value) => object.insert(field.to_owned(), serde_json::from_str(value).unwrap()),
            None => object.remove(field),
        };
        serde_json::to_string(&object).unwrap()
    }

    #[test]
    fn complete_record_is_valid() {
        let record = fields(VALID);
        let valid = record.validate().unwrap();
        assert_eq!(valid.user_id, "0000");
        assert_eq!(valid.created_at, "2022-02-10T21:09:51Z");
        assert_eq!(valid.last_visited_at, 1_644_527_391);
        assert_eq!(valid.status, "VERIFIED");
        assert!(!valid.is_blacklisted);
        assert_eq!(valid.status_logs.as_ref(), r#"[{"status":"INITIATED","updatedOn":1644527391}]"#);
    }

    #[test]
    fn missing_or_null_field_is_invalid() {
        for field in ["userId", "createdAt", "lastVisitedAt", "status", "isBlacklisted", "statusLogs"] {
            for value in [None, Some("null")] {
                let text = with_field(field, value);
                assert!(fields(&text).validate().is_none(), "{field} = {value:?}");
            }
        }
    }

    #[test]
    fn empty_status_is_invalid_but_blank_status_is_not() {
        assert!(fields(&with_field("status", Some(r#""""#))).validate().is_none());
        let blank = with_field("status", Some(r#"" ""#));
        assert_eq!(fields(&blank).validate().unwrap().status, " ");
    }

    #[test]
    fn empty_user_id_and_empty_logs_are_valid() {
        assert!(fields(&with_field("userId", Some(r#""""#))).validate().is_some());
        let no_logs = with_field("statusLogs", Some("[]"));
        assert_eq!(fields(&no_logs).validate().unwrap().status_logs.as_ref(), "[]");
    }

    #[test]
    fn wrong_types_are_invalid() {
        let wrong = [
            ("userId", "42"),
            ("createdAt", "1644527391"),
            ("lastVisitedAt", r#""1644527391""#),
            ("lastVisitedAt", "1644527391.0"),
            ("lastVisitedAt", "1.6e9"),
            ("status", r#"["VERIFIED"]"#),
            ("isBlacklisted", r#""false""#),
            ("isBlacklisted", "0"),
            ("statusLogs", r#"{"status":"INITIATED"}"#),
            ("statusLogs", r#""[]""#),
        ];
        for (field, value) in wrong {
            let text = with_field(field, Some(value));
            assert!(fields(&text).validate().is_none(), "{field} = {value}");
        }
    }

    #[test]
    fn status_logs_entries_must_all_be_objects() {
        let not_all_objects =
            [r#"["INITIATED"]"#, r#"[{"status":"INITIATED"},7]"#, "[{},null]", "[[{}]]", "[true]"];
        for entries in not_all_objects {
            let text = with_field("statusLogs", Some(entries));
            assert!(fields(&text).validate().is_none(), "statusLogs = {entries}");
        }
    }

    #[test]
    fn status_logs_entries_may_lack_fields() {
        for entries in ["[{}]", r#"[{"status":null},{"updatedOn":1.5,"by":"x"}]"#, r#"[{"status":""}]"#] {
            let text = with_field("statusLogs", Some(entries));
            assert!(fields(&text).validate().is_some(), "statusLogs = {entries}");
        }
    }

    #[test]
    fn status_logs_entries_are_checked_whatever_the_spacing() {
        let original = r#"[{"status":"INITIATED","updatedOn":1644527391}]"#;
        let spaced = "[\n  {\"status\": \"INITIATED\"} ,\n\t{ }\n]";
        let good = VALID.replace(original, spaced);
        assert_eq!(fields(&good).validate().unwrap().status_logs.as_ref(), r#"[{"status":"INITIATED"},{}]"#);
        let bad = VALID.replace(original, "[\n  {\"status\": \"INITIATED\"} ,\n\t\"VERIFIED\"\n]");
        assert!(fields(&bad).validate().is_none());
    }

    /// What [`array_of_objects`] makes of `text` (valid JSON), and whether it borrowed.
    fn scanned(text: &str) -> Option<(String, bool)> {
        array_of_objects(text).map(|found| (found.to_string(), matches!(found, Cow::Borrowed(_))))
    }

    #[test]
    fn array_scan_accepts_only_arrays_of_objects_and_agrees_with_a_parse() {
        let texts = [
            "[]",
            "[ ]",
            "[{}]",
            r#"[{"a":[1,"]",{"b":"},{"}],"c":"\"["},{"d":null}]"#,
            r#"[{"a":"x, 1"},{}]"#,
            "[1]",
            "[[{}]]",
            "[{},null]",
            r#"["{"]"#,
            r#"[{}, "a"]"#,
            "[{},true]",
            "[{},-1]",
            "{}",
            r#""[]""#,
            "7",
        ];
        for text in texts {
            let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
            let expected = parsed.as_array().is_some_and(|entries| entries.iter().all(|e| e.is_object()));
            assert_eq!(scanned(text).is_some(), expected, "{text}");
        }
    }

    #[test]
    fn array_scan_compacts_only_spaced_text() {
        assert_eq!(scanned(r#"[{"a":"b c"}]"#), Some((r#"[{"a":"b c"}]"#.to_owned(), true)));
        assert_eq!(
            scanned("[ {\"a\" : [ 1 , 2 ] } ,\n\t{ } ]"),
            Some((r#"[{"a":[1,2]},{}]"#.to_owned(), false))
        );
        assert_eq!(scanned("[ 1 ]"), None);
    }

    #[test]
    fn error_rec_shows_status_logs_with_an_entry_that_is_not_an_object() {
        let text = with_field("statusLogs", Some(r#"[{"status": "INITIATED"}, "VERIFIED"]"#));
        assert_eq!(
            fields(&text).error_rec(),
            r#"userid:0000,createdAt:2022-02-10T21:09:51Z,lastVisitedAt:1644527391,status:VERIFIED,statusLogs:[{"status":"INITIATED"},"VERIFIED"],isBlacklisted:false"#
        );
    }

    #[test]
    fn last_visited_at_must_fit_the_int_column() {
        let max = with_field("lastVisitedAt", Some("2147483647"));
        assert_eq!(fields(&max).validate().unwrap().last_visited_at, i32::MAX);
        let negative = with_field("lastVisitedAt", Some("-5"));
        assert_eq!(fields(&negative).validate().unwrap().last_visited_at, -5);
        let beyond = with_field("lastVisitedAt", Some("2147483648"));
        assert!(fields(&beyond).validate().is_none());
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let text = with_field("userId", Some(r#""a\"b\u00e9""#));
        assert_eq!(fields(&text).validate().unwrap().user_id, "a\"bé");
    }

    #[test]
    fn error_rec_matches_the_original_format() {
        let text = r#"{"userId":"0001","lastVisitedAt":1644527391,"status":"VERIFIED","isBlacklisted":false,"createdAt":null}"#;
        assert_eq!(
            fields(text).error_rec(),
            "userid:0001,createdAt:null,lastVisitedAt:1644527391,status:VERIFIED,statusLogs:null,isBlacklisted:false"
        );
    }

    #[test]
    fn error_rec_renders_empty_strings_as_nothing_and_arrays_compactly() {
        let text = r#"{"userId":"0002","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"","isBlacklisted":true,
            "statusLogs":[ {"status": "INITIATED", "updatedOn": 1644527391} ]}"#;
        assert_eq!(
            fields(text).error_rec(),
            r#"userid:0002,createdAt:2022-02-10T21:09:51Z,lastVisitedAt:1644527391,status:,statusLogs:[{"status":"INITIATED","updatedOn":1644527391}],isBlacklisted:true"#
        );
    }

    #[test]
    fn error_rec_keeps_wrong_typed_values_as_json_text() {
        let text = r#"{"userId":7,"lastVisitedAt":1.5e9,"status":{"a":1},"isBlacklisted":"no"}"#;
        assert_eq!(
            fields(text).error_rec(),
            r#"userid:7,createdAt:null,lastVisitedAt:1.5e9,status:{"a":1},statusLogs:null,isBlacklisted:no"#
        );
    }

    #[test]
    fn error_rec_of_an_empty_object_is_all_null() {
        assert_eq!(
            fields("{}").error_rec(),
            "userid:null,createdAt:null,lastVisitedAt:null,status:null,statusLogs:null,isBlacklisted:null"
        );
    }
}
