//! The samples format of sluice plugins, in one place: the SDK's native sample checks and
//! `sluice plugin test` (the built component, no services) read, compare and write it alike.
//!
//! - Input: `input.jsonl`, one record value per non-empty line; or `*.envelopes.jsonl`, one
//!   `{"key": string|null, "value": any JSON, "headers": {name: string}}` object per line, for
//!   plugins that read keys or headers (the value is handed over re-encoded as compact JSON).
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

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// Why a samples file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SamplesError {
    /// A file is missing or unreadable.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// A line of an envelopes file (numbered from 1) is not an envelope.
    #[error("{}:{line}: not a record envelope {{\"key\", \"value\", \"headers\"}}: {source}", path.display())]
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

/// One envelopes line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(default)]
    key: Option<String>,
    value: Value,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The input file of a samples directory: `input.envelopes.jsonl` when present, else
/// `input.jsonl`.
pub fn input_file(dir: &Path) -> PathBuf {
    let envelopes = dir.join("input.envelopes.jsonl");
    if envelopes.is_file() { envelopes } else { dir.join("input.jsonl") }
}

/// The records of an input file, by its name: envelopes when it ends in `.envelopes.jsonl`.
///
/// # Errors
/// [`SamplesError`] when the file cannot be read or an envelope line is not one.
pub fn read_records(path: &Path) -> Result<Vec<SampleRecord>, SamplesError> {
    let text = read_text(path)?;
    let envelopes = path.to_string_lossy().ends_with(".envelopes.jsonl");
    let lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
    if !envelopes {
        let record =
            |line: &str| SampleRecord { key: None, value: line.as_bytes().to_vec(), headers: Vec::new() };
        return Ok(lines.map(|(_, line)| record(line)).collect());
    }
    lines
        .map(|(number, line)| {
            let envelope_error =
                |source| SamplesError::Envelope { path: path.to_owned(), line: number + 1, source };
            let envelope: Envelope = serde_json::from_str(line).map_err(envelope_error)?;
            Ok(SampleRecord {
                key: envelope.key.map(String::into_bytes),
                value: serde_json::to_vec(&envelope.value).map_err(envelope_error)?,
                headers: envelope
                    .headers
                    .into_iter()
                    .map(|(name, value)| (name, value.into_bytes()))
                    .collect(),
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
}
