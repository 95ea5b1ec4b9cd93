//! The samples format of sluice plugins, in one place: the SDK's native sample checks and
//! `sluice plugin test` (the built component, no services) read, compare and write it alike,
//! and `sluice samples capture` writes it from where records really are.
//!
//! - Input: `input.jsonl`, one record value per non-empty line; or `*.envelopes.jsonl`, one
//!   envelope object per line, for plugins that read keys or headers and for records a line
//!   cannot hold exactly:
//!   - `value`: any JSON, handed over re-encoded as compact JSON; or `raw`: the record's exact
//!     bytes, a JSON string when they are UTF-8, else `{"base64": "..."}`. Exactly one of the
//!     two.
//!   - `key`: a string, null or `{"base64": "..."}`; `headers`: `{name: string or {"base64":
//!     "..."}}`; both optional.
//!   - `origin`: optional, any JSON object saying where the record came from (a topic's
//!     coordinates, a dead letter's step and reason, an object's record number); readers
//!     ignore it.
//! - Expected: `{"outputs": {name: [rows...]}, "failures": [{"index", "field", "reason",
//!   "part"}]}`. A row is the JSON object its columns render to (nulls left out); `field`
//!   appears only for a failure that names its field, `part` only for a failure of a part of
//!   an input, as JSON (a part that is not JSON as a JSON string of its text). An output or the
//!   failures left out expect nothing.
//! - Comparing: rows and parts as JSON values (spacing and key order do not matter), failures
//!   in order with index, field and reason; every difference is one sentence.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Why a samples file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SamplesError {
    /// A file is missing or unreadable.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// A line of an envelopes file (numbered from 1) is not an envelope.
    #[error(
        "{}:{line}: not a record envelope {{\"key\", \"value\" or \"raw\", \"headers\", \"origin\"}}: {source}",
        path.display()
    )]
    Envelope { path: PathBuf, line: usize, source: serde_json::Error },
    /// The expected file is not in the samples layout.
    #[error(
        "{}: expected {{\"outputs\": {{name: [rows]}}, \"failures\": [{{index, field?, reason, part?}}]}}: {source}",
        path.display()
    )]
    Expected { path: PathBuf, source: serde_json::Error },
}

/// One input record: its key, value and headers as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRecord {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// One envelopes line as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(default)]
    key: Option<JsonBytes>,
    /// `Some` whenever the field is there, `null` included (a record whose value is `null`).
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    #[serde(default)]
    raw: Option<JsonBytes>,
    #[serde(default)]
    headers: BTreeMap<String, JsonBytes>,
    /// Where the record came from; for people, not for the plugin.
    #[serde(default, rename = "origin")]
    _origin: Option<Map<String, Value>>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Bytes as an envelope holds them: a JSON string of their text when they are UTF-8, else
/// `{"base64": "..."}` (standard alphabet, padded).
#[derive(Debug, Clone, PartialEq, Eq)]
struct JsonBytes(Vec<u8>);

impl<'de> Deserialize<'de> for JsonBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(JsonBytes(text.into_bytes())),
            Value::Object(object) if object.len() == 1 => match object.get("base64") {
                Some(Value::String(encoded)) => BASE64
                    .decode(encoded)
                    .map(JsonBytes)
                    .map_err(|error| D::Error::custom(format!("`base64` is not valid base64: {error}"))),
                _ => Err(D::Error::custom(BYTES_EXPECTED)),
            },
            _ => Err(D::Error::custom(BYTES_EXPECTED)),
        }
    }
}

const BYTES_EXPECTED: &str = "bytes must be a string or {\"base64\": \"...\"}";

impl Serialize for JsonBytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => {
                let mut object = Map::new();
                object.insert("base64".to_owned(), Value::String(BASE64.encode(&self.0)));
                object.serialize(serializer)
            }
        }
    }
}

/// One envelopes line as written: always `raw`, so the record's bytes come back exactly.
#[derive(Serialize)]
struct EnvelopeOut<'a> {
    key: Option<JsonBytes>,
    raw: JsonBytes,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<&'a str, JsonBytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a Map<String, Value>>,
}

/// `record` as one envelopes line (without the line break): its exact bytes in `raw`, its key,
/// its headers and, when given, where it came from. A header name that repeats keeps its last
/// value, as an envelope holds one value per name.
///
/// # Errors
/// Only if a value cannot be written as JSON, which does not happen.
pub fn envelope_line(
    record: &SampleRecord,
    origin: Option<&Map<String, Value>>,
) -> Result<String, serde_json::Error> {
    let envelope = EnvelopeOut {
        key: record.key.clone().map(JsonBytes),
        raw: JsonBytes(record.value.clone()),
        headers: record
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), JsonBytes(value.clone())))
            .collect(),
        origin,
    };
    serde_json::to_string(&envelope)
}

/// Why a value cannot be a line of a plain `input.jsonl`, which reads a line's text back as the
/// value: a line break would split it, and a blank line is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotALine {
    #[error("it is not UTF-8 text")]
    NotUtf8,
    #[error("it holds a line break")]
    LineBreak,
    #[error("it is blank, and blank lines are skipped")]
    Blank,
}

/// `value` as the text of a plain `input.jsonl` line that reads back as exactly these bytes.
///
/// # Errors
/// [`NotALine`] when no line reads back as `value`; an envelopes file holds it.
pub fn plain_line(value: &[u8]) -> Result<&str, NotALine> {
    let text = std::str::from_utf8(value).map_err(|_| NotALine::NotUtf8)?;
    // A line's `\r\n` ending is dropped with it, so a value ending in `\r` would lose it.
    if text.contains('\n') || text.ends_with('\r') {
        return Err(NotALine::LineBreak);
    }
    if text.trim().is_empty() {
        return Err(NotALine::Blank);
    }
    Ok(text)
}

/// The input file of a samples directory: `input.envelopes.jsonl` when present, else
/// `input.jsonl`.
pub fn input_file(dir: &Path) -> PathBuf {
    let envelopes = dir.join("input.envelopes.jsonl");
    if envelopes.is_file() { envelopes } else { dir.join("input.jsonl") }
}

/// Whether `path` names an envelopes file, which is how the records of a file are read.
pub fn is_envelopes_file(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".envelopes.jsonl")
}

/// The records of an input file, by its name: envelopes when it ends in `.envelopes.jsonl`.
///
/// # Errors
/// [`SamplesError`] when the file cannot be read or an envelope line is not one.
pub fn read_records(path: &Path) -> Result<Vec<SampleRecord>, SamplesError> {
    let text = read_text(path)?;
    let lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
    if !is_envelopes_file(path) {
        let record =
            |line: &str| SampleRecord { key: None, value: line.as_bytes().to_vec(), headers: Vec::new() };
        return Ok(lines.map(|(_, line)| record(line)).collect());
    }
    lines
        .map(|(number, line)| {
            let envelope_error =
                |source| SamplesError::Envelope { path: path.to_owned(), line: number + 1, source };
            let envelope: Envelope = serde_json::from_str(line).map_err(envelope_error)?;
            let value = match (envelope.value, envelope.raw) {
                (Some(value), None) => serde_json::to_vec(&value).map_err(envelope_error)?,
                (None, Some(raw)) => raw.0,
                (Some(_), Some(_)) => {
                    return Err(envelope_error(serde::de::Error::custom(
                        "it has both `value` and `raw`; give the record as one of them",
                    )));
                }
                (None, None) => {
                    return Err(envelope_error(serde::de::Error::custom(
                        "it has neither `value` (any JSON) nor `raw` (the exact bytes)",
                    )));
                }
            };
            Ok(SampleRecord {
                key: envelope.key.map(|key| key.0),
                value,
                headers: envelope.headers.into_iter().map(|(name, value)| (name, value.0)).collect(),
            })
        })
        .collect()
}

/// A result in the samples layout: what a file expects, or what a run gave.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Expected {
    #[serde(default)]
    pub outputs: BTreeMap<String, Vec<Box<RawValue>>>,
    #[serde(default)]
    pub failures: Vec<ExpectedFailure>,
}

/// One failure in the samples layout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailure {
    /// The input record's position, from 0.
    pub index: u64,
    /// Left out for a failure that names no field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
    /// Left out for a whole failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<Box<RawValue>>,
}

impl ExpectedFailure {
    /// A failure of input `index`, `part` being the failed part's bytes when only a part failed.
    ///
    /// # Errors
    /// Only if a part that is not JSON cannot be written as a JSON string, which does not happen.
    pub fn new(
        index: u64,
        field: Option<String>,
        reason: String,
        part: Option<&[u8]>,
    ) -> Result<Self, serde_json::Error> {
        Ok(ExpectedFailure { index, field, reason, part: part.map(part_as_json).transpose()? })
    }
}

impl PartialEq for ExpectedFailure {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
            && self.field == other.field
            && self.reason == other.reason
            && self.part.as_deref().map(as_value) == other.part.as_deref().map(as_value)
    }
}

impl Display for ExpectedFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "#{} ", self.index)?;
        if let Some(field) = &self.field {
            write!(formatter, "field `{field}`: ")?;
        }
        formatter.write_str(&self.reason)?;
        match self.part.as_deref() {
            Some(part) => write!(formatter, " (part {})", compact(part.get())),
            None => Ok(()),
        }
    }
}

/// A row or part as text for the samples layout: JSON text as the JSON it is, anything else
/// (not UTF-8, not JSON) as a JSON string of its text.
///
/// # Errors
/// Only if that string cannot be written, which does not happen.
pub fn part_as_json(bytes: &[u8]) -> Result<Box<RawValue>, serde_json::Error> {
    let json =
        std::str::from_utf8(bytes).ok().and_then(|text| RawValue::from_string(text.trim().to_owned()).ok());
    json.map_or_else(|| serde_json::value::to_raw_value(&String::from_utf8_lossy(bytes)), Ok)
}

/// A JSON text's value; text that does not parse compares as the string it is.
fn as_value(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or_else(|_| Value::String(raw.get().to_owned()))
}

/// Reads an expected file.
///
/// # Errors
/// [`SamplesError`] when it cannot be read or is not in the samples layout.
pub fn read_expected(path: &Path) -> Result<Expected, SamplesError> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|source| SamplesError::Expected { path: path.to_owned(), source })
}

/// `result` written in the samples layout, for people to read and as an expected file.
///
/// # Errors
/// Only if a value cannot be written, which does not happen.
pub fn render(result: &Expected) -> Result<String, serde_json::Error> {
    Ok(serde_json::to_string_pretty(result)? + "\n")
}

/// Every way `actual` differs from `expected`, one sentence each: rows per output in order (an
/// output missing from `expected` must have none), then failures in order.
pub fn differences(expected: &Expected, actual: &Expected) -> Vec<String> {
    let names: BTreeSet<&String> = expected.outputs.keys().chain(actual.outputs.keys()).collect();
    let mut differences = Vec::new();
    for name in names {
        let rows = |result: &Expected| -> Vec<Row> {
            let row = |raw: &RawValue| Row { value: as_value(raw), text: compact(raw.get()) };
            result.outputs.get(name).into_iter().flatten().map(|raw| row(raw)).collect()
        };
        compare_in_order(&format!("output `{name}` row"), &rows(expected), &rows(actual), &mut differences);
    }
    compare_in_order("failure", &expected.failures, &actual.failures, &mut differences);
    differences
}

/// A row compared as a JSON value and shown as its compact text, columns in their order.
struct Row {
    value: Value,
    text: String,
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Display for Row {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// JSON text without the whitespace between its tokens, for messages.
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Adds a sentence for every position where `want` and `got` differ, extra or missing items
/// included, so one run shows everything to fix.
fn compare_in_order<T: PartialEq + Display>(
    label: &str,
    want: &[T],
    got: &[T],
    differences: &mut Vec<String>,
) {
    for position in 0..want.len().max(got.len()) {
        match (want.get(position), got.get(position)) {
            (Some(want), Some(got)) if want == got => {}
            (Some(want), Some(got)) => {
                differences.push(format!("{label} {position}: expected {want}, got {got}"))
            }
            (Some(want), None) => {
                differences.push(format!("{label} {position}: expected {want}, got nothing"))
            }
            (None, Some(got)) => differences.push(format!("{label} {position}: expected nothing, got {got}")),
            (None, None) => {}
        }
    }
}

fn read_text(path: &Path) -> Result<String, SamplesError> {
    std::fs::read_to_string(path).map_err(|source| SamplesError::Read { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).expect("JSON")
    }

    fn result(rows: &[&str], failures: Vec<ExpectedFailure>) -> Expected {
        let outputs = BTreeMap::from([("out".to_owned(), rows.iter().map(|row| raw(row)).collect())]);
        Expected { outputs, failures }
    }

    fn failure(index: u64, part: Option<&[u8]>) -> ExpectedFailure {
        ExpectedFailure::new(index, Some("id".into()), "required".into(), part).expect("failure")
    }

    #[test]
    fn rows_and_parts_compare_as_json_values() {
        let expected =
            result(&[r#"{ "a": 1, "b": [1, 2] }"#], vec![failure(2, Some(br#"[ {"x": 1, "y": 2} ]"#))]);
        let actual = result(&[r#"{"b":[1,2],"a":1}"#], vec![failure(2, Some(br#"[{"y":2,"x":1}]"#))]);
        assert!(differences(&expected, &actual).is_empty());
    }

    #[test]
    fn every_difference_is_one_sentence() {
        let expected = result(&[r#"{"a":1}"#, r#"{"a":2}"#], vec![failure(0, None)]);
        let actual = result(&[r#"{"a":1}"#, r#"{"a":3}"#, r#"{"a":4}"#], vec![failure(1, None)]);
        assert_eq!(
            differences(&expected, &actual),
            [
                r#"output `out` row 1: expected {"a":2}, got {"a":3}"#,
                r#"output `out` row 2: expected nothing, got {"a":4}"#,
                "failure 0: expected #0 field `id`: required, got #1 field `id`: required",
            ]
        );
    }

    #[test]
    fn messages_show_rows_compact_in_their_column_order() {
        let expected = result(&[r#"{ "z": "a b", "a": [1, 2] }"#], Vec::new());
        let actual = result(&[r#"{"z":"a  b","a":[1,2]}"#], Vec::new());
        assert_eq!(
            differences(&expected, &actual),
            [r#"output `out` row 0: expected {"z":"a b","a":[1,2]}, got {"z":"a  b","a":[1,2]}"#]
        );
    }

    #[test]
    fn an_output_left_out_expects_nothing() {
        let expected = Expected::default();
        assert!(differences(&expected, &result(&[], Vec::new())).is_empty());
        assert_eq!(differences(&expected, &result(&["1"], Vec::new())).len(), 1);
    }

    #[test]
    fn a_part_that_is_not_json_is_its_text() {
        let part = failure(0, Some(b"bad \xff")).part.expect("part");
        assert_eq!(part.get(), "\"bad \u{fffd}\"");
        assert_eq!(failure(0, Some(b" [1] ")).part.expect("part").get(), "[1]");
    }

    #[test]
    fn a_whole_failure_is_written_without_part_or_missing_field() {
        let whole = ExpectedFailure::new(3, None, "not JSON".into(), None).expect("failure");
        let text = render(&Expected { outputs: BTreeMap::new(), failures: vec![whole] }).expect("render");
        let back: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(back["failures"][0], serde_json::json!({"index": 3, "reason": "not JSON"}));
    }

    #[test]
    fn envelopes_and_plain_lines_are_read_by_file_name() {
        let dir = tempfile::tempdir().expect("dir");
        let plain = dir.path().join("input.jsonl");
        std::fs::write(&plain, "{\"a\": 1}\n\n  \nnot json\n").expect("write");
        let records = read_records(&plain).expect("records");
        assert_eq!(
            records.iter().map(|r| r.value.as_slice()).collect::<Vec<_>>(),
            [&b"{\"a\": 1}"[..], b"not json"]
        );
        assert_eq!(input_file(dir.path()), plain);

        let envelopes = dir.path().join("input.envelopes.jsonl");
        std::fs::write(
            &envelopes,
            "{\"key\": \"k\", \"value\": {\"a\": 1}, \"headers\": {\"h\": \"v\"}}\n{\"nope\": 1}\n",
        )
        .expect("write");
        assert_eq!(input_file(dir.path()), envelopes);
        let error = read_records(&envelopes).expect_err("line 2 is no envelope");
        assert!(error.to_string().contains("input.envelopes.jsonl:2"), "{error}");
        std::fs::write(&envelopes, "{\"key\": \"k\", \"value\": {\"a\": 1}, \"headers\": {\"h\": \"v\"}}\n")
            .expect("write");
        let records = read_records(&envelopes).expect("records");
        assert_eq!(
            records,
            [SampleRecord {
                key: Some(b"k".to_vec()),
                value: b"{\"a\":1}".to_vec(),
                headers: vec![("h".to_owned(), b"v".to_vec())],
            }]
        );
    }

    /// The records of an envelopes file holding `text`, or the error reading it.
    fn envelopes(text: &str) -> Result<Vec<SampleRecord>, SamplesError> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("captured.envelopes.jsonl");
        std::fs::write(&path, text).expect("write");
        read_records(&path)
    }

    #[test]
    fn raw_text_is_handed_over_exactly_spacing_and_all() {
        let pretty = "{\n  \"b\": 1,\n  \"a\": [ 2 ]\n}";
        let line = serde_json::json!({"raw": pretty, "origin": {"topic": "t", "offset": 3}}).to_string();
        let records = envelopes(&format!("{line}\n")).expect("records");
        assert_eq!(records[0].value, pretty.as_bytes());
        let not_json = envelopes("{\"raw\": \"not json , at all \"}\n").expect("records");
        assert_eq!(not_json[0].value, b"not json , at all ");
    }

    #[test]
    fn raw_key_and_header_bytes_may_be_base64() {
        let line = r#"{"key": {"base64": "AP8="}, "raw": {"base64": "wyg="}, "headers": {"t": {"base64": "/w=="}, "u": "v"}}"#;
        let records = envelopes(line).expect("records");
        assert_eq!(
            records,
            [SampleRecord {
                key: Some(vec![0x00, 0xff]),
                value: vec![0xc3, 0x28],
                headers: vec![("t".to_owned(), vec![0xff]), ("u".to_owned(), b"v".to_vec())],
            }]
        );
        for bad in [r#"{"raw": {"base64": "%%"}}"#, r#"{"raw": 3}"#, r#"{"raw": {"base64": "AA==", "x": 1}}"#]
        {
            let error = envelopes(bad).expect_err(bad).to_string();
            assert!(error.contains("captured.envelopes.jsonl:1: not a record envelope"), "{error}");
        }
    }

    #[test]
    fn an_envelope_has_value_or_raw_never_both_or_neither() {
        let both = envelopes("{\"value\": 1}\n{\"value\": 1, \"raw\": \"1\"}\n").expect_err("both");
        assert!(both.to_string().contains("captured.envelopes.jsonl:2:"), "{both}");
        assert!(both.to_string().contains("both `value` and `raw`"), "{both}");
        let neither = envelopes("{\"key\": \"k\", \"headers\": {}}").expect_err("neither");
        assert!(neither.to_string().contains("captured.envelopes.jsonl:1:"), "{neither}");
        assert!(neither.to_string().contains("neither `value`"), "{neither}");
        let null = envelopes("{\"value\": null, \"key\": null}").expect("a null value is a value");
        assert_eq!(null[0].value, b"null");
        assert!(envelopes("{\"value\": 1, \"origin\": \"kafka\"}").is_err(), "origin is an object");
        assert!(envelopes("{\"value\": 1, \"partition\": 2}").is_err(), "unknown fields are refused");
    }

    #[test]
    fn written_envelopes_read_back_as_the_same_record() {
        let records = [
            SampleRecord {
                key: Some(b"k".to_vec()),
                value: b"{ \"a\" :\n 1 }".to_vec(),
                headers: vec![("h".to_owned(), b"v".to_vec())],
            },
            SampleRecord {
                key: Some(vec![0xff]),
                value: vec![0x00, 0xc3],
                headers: vec![("b".into(), vec![0xfe])],
            },
            SampleRecord { key: None, value: Vec::new(), headers: Vec::new() },
        ];
        let origin = serde_json::json!({"topic": "t", "partition": 0, "offset": 7});
        let origin = origin.as_object();
        let lines: Vec<String> =
            records.iter().map(|record| envelope_line(record, origin).expect("line")).collect();
        assert_eq!(
            lines[0],
            r#"{"key":"k","raw":"{ \"a\" :\n 1 }","headers":{"h":"v"},"origin":{"offset":7,"partition":0,"topic":"t"}}"#
        );
        assert!(
            lines[1].starts_with(
                r#"{"key":{"base64":"/w=="},"raw":{"base64":"AMM="},"headers":{"b":{"base64":"/g=="}}"#
            ),
            "{}",
            lines[1]
        );
        assert_eq!(envelopes(&lines.join("\n")).expect("records"), records);
    }

    #[test]
    fn only_values_a_line_gives_back_exactly_are_plain_lines() {
        assert_eq!(plain_line(b" {\"a\": 1} "), Ok(" {\"a\": 1} "));
        assert_eq!(plain_line(b"a\rb"), Ok("a\rb"));
        assert_eq!(plain_line(b"{\n}"), Err(NotALine::LineBreak));
        assert_eq!(plain_line(b"x\r"), Err(NotALine::LineBreak));
        assert_eq!(plain_line(b" \t"), Err(NotALine::Blank));
        assert_eq!(plain_line(&[0xff]), Err(NotALine::NotUtf8));
    }
}
