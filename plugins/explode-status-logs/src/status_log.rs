//! The `status_logs` record and the `user_status_log` rows its entries become.
//!
//! The rules follow the Glue job this plugin replaces: Spark's `explode(statusLogs)` makes one
//! row per entry, selecting `statuslogs["updatedOn"]` and `statuslogs["status"]`, so no entry is
//! ever dropped and a field an entry lacks is NULL.
//!
//! - The record must be an object whose `userId` is a string and whose `statusLogs` is an
//!   array; otherwise the whole record fails and gives no rows.
//! - Every entry that is an object becomes one row, in order. `updatedOn` and `status` are
//!   NULL when the entry lacks them or holds `null`; any other value is kept as text, because
//!   both columns are varchar: a string as its content (`""` stays empty), a number as its
//!   literal JSON text (`1644527391`, `1.5`, `1e3`), `true`/`false` as that word, and an array
//!   or object as its compact JSON text. An entry that repeats a field keeps the last value,
//!   as Spark's JSON reader does. Unknown fields are ignored.
//! - An entry that is not an object has no fields to select, so it is the one thing refused:
//!   the record fails whole, gives no rows, and one failure names every such entry, so the dead
//!   letter shows everything to fix and the record is reported once. Keeping the other entries
//!   back is what makes replaying the fixed dead letter safe: the `user_status_log` table has
//!   no key to deduplicate on, so rows written on the first pass would be inserted again.
//!   (`validate-user-status` already sends such a record to its error rows, so this only
//!   catches `status_logs` records from elsewhere.)
//! - An empty `statusLogs` gives no rows and no failure.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use sluice_plugin_sdk::json::scan::{Kind, Scanner};
use sluice_plugin_sdk::json::{compact_text, kind_of_text, parse_object, string_text};

/// One entry of a user's status history, its fields as the varchar columns hold them.
#[derive(Debug, PartialEq)]
pub struct StatusLogEntry<'a> {
    /// `None` when the entry has no `updatedOn` or holds `null` there.
    pub updated_on: Option<Cow<'a, str>>,
    /// `None` when the entry has no `status` or holds `null` there.
    pub status: Option<Cow<'a, str>>,
}

/// Why a `status_logs` record gives no rows: the field at fault when the problem is one field
/// (`userId`, `statusLogs`, `statusLogs[2]`), and the problem. Shown as `field: problem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplodeError {
    pub field: Option<String>,
    pub problem: String,
}

impl ExplodeError {
    fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ExplodeError { field: Some(field.into()), problem: problem.into() }
    }

    fn record(problem: String) -> Self {
        ExplodeError { field: None, problem }
    }
}

impl fmt::Display for ExplodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(formatter, "{field}: {}", self.problem),
            None => formatter.write_str(&self.problem),
        }
    }
}

/// A `status_logs` record taken apart, one entry per row to write.
#[derive(Debug, PartialEq)]
pub struct ExplodedRecord<'a> {
    pub user_id: Cow<'a, str>,
    pub entries: Vec<StatusLogEntry<'a>>,
}

/// A record as serde_json reads it, for the records the scanner stops on.
#[derive(Deserialize)]
struct RecordFields<'a> {
    #[serde(rename = "userId", borrow, default)]
    user_id: Option<&'a RawValue>,
    #[serde(rename = "statusLogs", borrow, default)]
    status_logs: Option<StatusLogsField<'a>>,
}

/// `statusLogs` as serde_json reads it: each entry's fields, or the kind of value it was
/// instead of an object; or the kind of value the field held instead of an array.
enum StatusLogsField<'a> {
    Entries(Vec<Result<EntryFields<'a>, &'static str>>),
    NotAnArray(&'static str),
}

/// The two fields an entry is read for; missing and `null` are both `None`.
#[derive(Default)]
struct EntryFields<'a> {
    status: Option<&'a RawValue>,
    updated_on: Option<&'a RawValue>,
}

/// The keys of an entry object that matter; escaped spellings are decoded before matching.
#[derive(Deserialize)]
#[serde(field_identifier)]
enum EntryKey {
    #[serde(rename = "status")]
    Status,
    #[serde(rename = "updatedOn")]
    UpdatedOn,
    #[serde(other)]
    Other,
}

/// Defines the visitor methods for values that are neither an object nor an array, each
/// giving `$other(kind)` with the kind named as failure reasons say it (as [`kind`] does).
macro_rules! other_kinds {
    ($other:expr) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other("a boolean"))
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other("a number"))
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other("a number"))
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other("a number"))
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other("a string"))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok($other("null"))
        }
    };
}

/// Reads one entry of the list: its fields when it is an object, else the kind it is. A
/// repeated field keeps its last value, as the original job's reader did (a derived struct
/// would refuse it).
struct EntryVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for EntryVisitor<'a> {
    type Value = Result<EntryFields<'a>, &'static str>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a status log entry")
    }

    other_kinds!(Err);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = EntryFields::default();
        while let Some(key) = map.next_key()? {
            match key {
                EntryKey::Status => fields.status = map.next_value()?,
                EntryKey::UpdatedOn => fields.updated_on = map.next_value()?,
                EntryKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Ok(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("an array"))
    }
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for EntryVisitor<'a> {
    type Value = Result<EntryFields<'a>, &'static str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Reads the list, every entry as it comes, or names the kind of value found instead.
struct StatusLogsVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for StatusLogsVisitor<'a> {
    type Value = StatusLogsField<'a>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a list of status log entries")
    }

    other_kinds!(StatusLogsField::NotAnArray);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(StatusLogsField::NotAnArray("an object"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(entry) = seq.next_element_seed(EntryVisitor(PhantomData))? {
            entries.push(entry);
        }
        Ok(StatusLogsField::Entries(entries))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for StatusLogsField<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StatusLogsVisitor(PhantomData))
    }
}

/// A record's two fields as JSON text, read once: `userId`, and `statusLogs` entry by entry.
#[derive(Debug, PartialEq, Eq)]
struct ReadRecord<'a> {
    user_id: Option<&'a str>,
    status_logs: Option<ReadLogs<'a>>,
}

/// `statusLogs`: each entry's two fields, or the kind of value it was instead of an object; or
/// the kind of value the field held instead of an array.
#[derive(Debug, PartialEq, Eq)]
enum ReadLogs<'a> {
    Entries(Vec<Result<ReadEntry<'a>, &'static str>>),
    NotAnArray(&'static str),
}

/// An entry's two fields as JSON text; missing and `null` are both `None`.
#[derive(Debug, Default, PartialEq, Eq)]
struct ReadEntry<'a> {
    status: Option<&'a str>,
    updated_on: Option<&'a str>,
}

/// Reads one record in one pass with the SDK's [`Scanner`], or, where the scanner stops (not
/// one object, broken JSON, a field twice, a field name with an escape), with serde_json, so
/// those records get serde_json's reasons and reading.
fn read_record(bytes: &[u8]) -> Result<ReadRecord<'_>, String> {
    let text = simdutf8::basic::from_utf8(bytes).ok();
    if let Some(record) = text.and_then(scan_record) {
        return Ok(record);
    }
    read_record_with_serde(bytes)
}

/// [`read_record`] by serde_json alone.
fn read_record_with_serde(bytes: &[u8]) -> Result<ReadRecord<'_>, String> {
    let fields: RecordFields = parse_object(bytes)?;
    fn entry(fields: EntryFields<'_>) -> ReadEntry<'_> {
        ReadEntry {
            status: fields.status.map(RawValue::get),
            updated_on: fields.updated_on.map(RawValue::get),
        }
    }
    Ok(ReadRecord {
        user_id: fields.user_id.map(RawValue::get),
        status_logs: fields.status_logs.map(|logs| match logs {
            StatusLogsField::Entries(entries) => {
                ReadLogs::Entries(entries.into_iter().map(|read| read.map(entry)).collect())
            }
            StatusLogsField::NotAnArray(found) => ReadLogs::NotAnArray(found),
        }),
    })
}

/// The one-pass reading; `None` where serde_json has to read the record.
fn scan_record(text: &str) -> Option<ReadRecord<'_>> {
    let mut scanner = Scanner::new(text);
    let mut record = ReadRecord { user_id: None, status_logs: None };
    let (mut seen_user_id, mut seen_status_logs) = (false, false);
    scanner.begin_object().ok()?;
    let mut first = true;
    while let Some(name) = scanner.next_key(first).ok()? {
        first = false;
        match name.plain_str()? {
            "userId" => {
                if std::mem::replace(&mut seen_user_id, true) {
                    return None;
                }
                let value = scanner.value().ok()?;
                record.user_id = (value.kind() != Kind::Null).then_some(value.text());
            }
            "statusLogs" => {
                if std::mem::replace(&mut seen_status_logs, true) {
                    return None;
                }
                record.status_logs = match scanner.peek()? {
                    Kind::Null => {
                        scanner.value().ok()?;
                        None
                    }
                    Kind::Array => Some(ReadLogs::Entries(scan_entries(&mut scanner)?)),
                    _ => Some(ReadLogs::NotAnArray(kind_of_text(scanner.value().ok()?.text()))),
                };
            }
            _ => {
                scanner.value().ok()?;
            }
        }
    }
    scanner.finish().ok()?;
    Some(record)
}

/// The entries of the array that comes next; `None` where serde_json has to read the record.
fn scan_entries<'a>(scanner: &mut Scanner<'a>) -> Option<Vec<Result<ReadEntry<'a>, &'static str>>> {
    let mut entries = Vec::new();
    scanner.begin_array().ok()?;
    let mut first = true;
    while scanner.next_element(first).ok()? {
        first = false;
        if scanner.peek()? != Kind::Object {
            entries.push(Err(kind_of_text(scanner.value().ok()?.text())));
            continue;
        }
        let mut entry = ReadEntry::default();
        scanner.begin_object().ok()?;
        let mut first_member = true;
        while let Some(name) = scanner.next_key(first_member).ok()? {
            first_member = false;
            let name = name.plain_str()?;
            let value = scanner.value().ok()?;
            let text = (value.kind() != Kind::Null).then_some(value.text());
            match name {
                "status" => entry.status = text,
                "updatedOn" => entry.updated_on = text,
                _ => {}
            }
        }
        entries.push(Ok(entry));
    }
    Some(entries)
}

/// Takes one `status_logs` record apart into its entries, all of them or none.
///
/// # Errors
/// Why the record is unusable: not a JSON object; `userId` or `statusLogs` missing, null or
/// of the wrong type; or `statusLogs[i]: expected an object, found ...` for every entry that is
/// not an object: the field `statusLogs[i]` when there is one such entry, else no field and
/// every entry's `statusLogs[i]: problem` joined by `; ` in entry order.
pub fn explode(bytes: &[u8]) -> Result<ExplodedRecord<'_>, ExplodeError> {
    let record = read_record(bytes).map_err(ExplodeError::record)?;
    let user_id = match record.user_id {
        None => return Err(ExplodeError::field("userId", "missing or null")),
        Some(raw) => string_text(raw).ok_or_else(|| {
            ExplodeError::field("userId", format!("expected a string, found {}", kind_of_text(raw)))
        })?,
    };
    let read_entries = match record.status_logs {
        None => return Err(ExplodeError::field("statusLogs", "missing or null")),
        Some(ReadLogs::NotAnArray(found)) => {
            return Err(ExplodeError::field("statusLogs", format!("expected an array, found {found}")));
        }
        Some(ReadLogs::Entries(entries)) => entries,
    };
    let mut entries = Vec::with_capacity(read_entries.len());
    let mut problems = Vec::new();
    for (position, read) in read_entries.into_iter().enumerate() {
        match read {
            Ok(fields) => entries.push(StatusLogEntry {
                updated_on: fields.updated_on.map(column_text),
                status: fields.status.map(column_text),
            }),
            Err(found) => problems.push(ExplodeError::field(
                format!("statusLogs[{position}]"),
                format!("expected an object, found {found}"),
            )),
        }
    }
    match problems.len() {
        0 => Ok(ExplodedRecord { user_id, entries }),
        1 => Err(problems.remove(0)),
        _ => {
            Err(ExplodeError::record(problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
        }
    }
}

/// A non-null value as a varchar column holds it: a string's content, anything else its
/// compact JSON text (a number exactly as written, `true`, `{"a":1}`).
fn column_text(text: &str) -> Cow<'_, str> {
    string_text(text).unwrap_or_else(|| compact_text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Texts = (Option<String>, Option<String>);

    /// Each entry's `(updatedOn, status)`, as owned text.
    fn entries_of(text: &str) -> Vec<Texts> {
        let exploded = explode(text.as_bytes()).unwrap();
        exploded
            .entries
            .into_iter()
            .map(|e| (e.updated_on.map(Into::into), e.status.map(Into::into)))
            .collect()
    }

    fn reason_of(text: &str) -> String {
        explode(text.as_bytes()).unwrap_err().to_string()
    }

    fn pair(updated_on: Option<&str>, status: Option<&str>) -> Texts {
        (updated_on.map(str::to_owned), status.map(str::to_owned))
    }

    #[test]
    fn every_entry_becomes_a_row_in_order() {
        let text = r#"{"userId":"0000","statusLogs":[{"status":"INITIATED","updatedOn":1644527391},{"updatedOn":"2022-02-11","status":"VERIFIED"}]}"#;
        assert_eq!(explode(text.as_bytes()).unwrap().user_id, "0000");
        assert_eq!(
            entries_of(text),
            [pair(Some("1644527391"), Some("INITIATED")), pair(Some("2022-02-11"), Some("VERIFIED"))]
        );
    }

    #[test]
    fn empty_list_gives_no_rows_and_no_problem() {
        assert_eq!(entries_of(r#"{"userId":"0000","statusLogs":[]}"#), []);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let text = r#"{"userId":"0","extra":1,"statusLogs":[{"status":"A","updatedOn":-7,"by":{"x":[1]}}]}"#;
        assert_eq!(entries_of(text), [pair(Some("-7"), Some("A"))]);
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let text = r#"{"userId":"a\"b","statusLogs":[{"status":"\u00e9","updatedOn":"x\\y"}]}"#;
        assert_eq!(explode(text.as_bytes()).unwrap().user_id, "a\"b");
        assert_eq!(entries_of(text), [pair(Some("x\\y"), Some("é"))]);
    }

    #[test]
    fn escaped_field_names_are_matched_by_their_text() {
        let text = r#"{"userId":"0","statusLogs":[{"st\u0061tus":"A","updated\u004fn":1}]}"#;
        assert_eq!(entries_of(text), [pair(Some("1"), Some("A"))]);
    }

    #[test]
    fn missing_or_null_fields_give_null_columns_and_keep_the_entry() {
        let text = r#"{"userId":"0","statusLogs":[{"updatedOn":1},{"status":"B"},{"status":null,"updatedOn":null},{}]}"#;
        assert_eq!(
            entries_of(text),
            [pair(Some("1"), None), pair(None, Some("B")), pair(None, None), pair(None, None)]
        );
    }

    #[test]
    fn empty_string_stays_an_empty_string_not_null() {
        let text = r#"{"userId":"0","statusLogs":[{"status":"","updatedOn":""}]}"#;
        assert_eq!(entries_of(text), [pair(Some(""), Some(""))]);
    }

    #[test]
    fn numbers_keep_their_literal_text() {
        let text = r#"{"userId":"0","statusLogs":[{"status":0,"updatedOn":1.5},{"status":-2.50,"updatedOn":1e3},{"status":1E-2,"updatedOn":99999999999999999999}]}"#;
        assert_eq!(
            entries_of(text),
            [
                pair(Some("1.5"), Some("0")),
                pair(Some("1e3"), Some("-2.50")),
                pair(Some("99999999999999999999"), Some("1E-2")),
            ]
        );
    }

    #[test]
    fn booleans_become_their_word() {
        let text = r#"{"userId":"0","statusLogs":[{"status":true,"updatedOn":false}]}"#;
        assert_eq!(entries_of(text), [pair(Some("false"), Some("true"))]);
    }

    #[test]
    fn arrays_and_objects_become_compact_json_text() {
        let text = r#"{"userId":"0","statusLogs":[ { "status" : [ "A", "B c" ] , "updatedOn" : { "at" : 1, "tz" : null } } ]}"#;
        assert_eq!(entries_of(text), [pair(Some(r#"{"at":1,"tz":null}"#), Some(r#"["A","B c"]"#))]);
    }

    #[test]
    fn repeated_entry_field_keeps_the_last_value() {
        let text = r#"{"userId":"0","statusLogs":[{"status":"A","status":"B","updatedOn":1},{"status":"C","status":null}]}"#;
        assert_eq!(entries_of(text), [pair(Some("1"), Some("B")), pair(None, None)]);
    }

    #[test]
    fn entries_that_are_not_objects_fail_the_record_naming_every_one() {
        let text = r#"{"userId":"0","statusLogs":[{"status":"A","updatedOn":1},"B",{},null,7,[{"status":"C"}],true]}"#;
        assert_eq!(
            reason_of(text),
            [
                "statusLogs[1]: expected an object, found a string",
                "statusLogs[3]: expected an object, found null",
                "statusLogs[4]: expected an object, found a number",
                "statusLogs[5]: expected an object, found an array",
                "statusLogs[6]: expected an object, found a boolean",
            ]
            .join("; ")
        );
    }

    #[test]
    fn one_bad_entry_is_named_as_the_field_and_several_are_listed_in_the_reason() {
        let one = explode(br#"{"userId":"0","statusLogs":[{},7]}"#).unwrap_err();
        assert_eq!(
            (one.field.as_deref(), one.problem.as_str()),
            (Some("statusLogs[1]"), "expected an object, found a number")
        );
        let two = explode(br#"{"userId":"0","statusLogs":[7,"B"]}"#).unwrap_err();
        assert_eq!(two.field, None);
        assert_eq!(
            two.problem,
            "statusLogs[0]: expected an object, found a number; statusLogs[1]: expected an object, found a string"
        );
        let user = explode(br#"{"userId":7,"statusLogs":[]}"#).unwrap_err();
        assert_eq!(
            (user.field.as_deref(), user.problem.as_str()),
            (Some("userId"), "expected a string, found a number")
        );
    }

    #[test]
    fn spaced_array_is_read_entry_by_entry() {
        let text = "{\"userId\":\"0\",\"statusLogs\":[\n  {\"status\": \"A\"} ,\n  \"B\"\n]}";
        assert_eq!(reason_of(text), "statusLogs[1]: expected an object, found a string");
        let text = "{\"userId\":\"0\",\"statusLogs\":[\n  {\"status\": \"A\"} ,\n\t{}\n]}";
        assert_eq!(entries_of(text), [pair(None, Some("A")), pair(None, None)]);
    }

    #[test]
    fn good_record_gives_every_entry_borrowed_where_it_can() {
        let exploded =
            explode(br#"{"userId":"0","statusLogs":[{"status":"A","updatedOn":1},{"status":null}]}"#);
        assert_eq!(
            exploded,
            Ok(ExplodedRecord {
                user_id: "0".into(),
                entries: vec![
                    StatusLogEntry { updated_on: Some("1".into()), status: Some("A".into()) },
                    StatusLogEntry { updated_on: None, status: None },
                ]
            })
        );
        let exploded = exploded.unwrap();
        assert!(matches!(exploded.entries[0].updated_on, Some(Cow::Borrowed(_))));
        assert!(matches!(exploded.entries[0].status, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn record_without_a_usable_user_id_fails_whole() {
        let cases = [
            (r#"{"statusLogs":[]}"#, "userId: missing or null"),
            (r#"{"userId":null,"statusLogs":[]}"#, "userId: missing or null"),
            (r#"{"userId":7,"statusLogs":[]}"#, "userId: expected a string, found a number"),
        ];
        for (text, reason) in cases {
            assert_eq!(reason_of(text), reason, "{text}");
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
            assert_eq!(reason_of(text), reason, "{text}");
        }
    }

    #[test]
    fn input_that_is_not_an_object_fails_whole() {
        assert_eq!(reason_of("[]"), "expected a JSON object, found an array");
        assert!(reason_of("{").starts_with("not valid JSON: EOF"));
        assert_eq!(explode(b"[]").unwrap_err().field, None);
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use sluice_fuzz::plugin::{Batch, sample_batches};

    use super::*;

    /// The fields a `status_logs` record and its entries are read for.
    const KEYS: &[&str] = &["userId", "statusLogs", "status", "updatedOn"];

    fn batches() -> impl Strategy<Value = Batch> {
        sample_batches(concat!(env!("CARGO_MANIFEST_DIR"), "/samples"), KEYS)
    }

    proptest! {
        #![proptest_config(sluice_fuzz::config())]

        #[test]
        fn the_one_pass_reading_gives_what_serde_json_alone_gives(batch in batches()) {
            for record in &batch.0 {
                prop_assert_eq!(read_record(&record.value), read_record_with_serde(&record.value));
            }
        }
    }
}
