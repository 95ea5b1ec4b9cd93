//! Checking a plugin's logic against its `samples/` directory in a native `cargo test`.
//!
//! Every plugin keeps a sample batch and what it must give: `input.jsonl` (one record value
//! per non-empty line) or `input.envelopes.jsonl` (one `{"key", "value", "headers"}` object per
//! line, for plugins that read keys or headers), and `expected.json`,
//! `{"outputs": {name: [values...]}, "failures": [{"index", "reason", "part"}]}`, where `part`
//! appears only for a failure of a part of an input (see [`crate::Failure::part`]) and shows
//! that part as JSON (a part that is not JSON as a JSON string of its text). `sluice plugin
//! test` replays the same files through the built component; this module reads them the same
//! way, so a change that breaks the sample fails `cargo test` long before the end-to-end run.
//!
//! Native only: a plugin component has no files to read.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::json::compact;
use crate::{BatchResult, Failure, Header, RecordIn};

/// The environment variable that makes [`check`] rewrite `expected.json` instead of comparing.
///
/// For an intended change of output: run the tests once with it set, then review the diff.
pub const BLESS_VAR: &str = "SLUICE_BLESS";

/// Why a sample check could not run, or how its result differs from `expected.json`.
#[derive(Debug, thiserror::Error)]
pub enum SamplesError {
    /// A sample file is missing or unreadable.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// Blessing could not replace `expected.json`.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// A line of `input.envelopes.jsonl` (numbered from 1) is not an envelope.
    #[error("{}:{line}: not a record envelope {{\"key\", \"value\", \"headers\"}}: {source}", path.display())]
    Envelope { path: PathBuf, line: usize, source: serde_json::Error },
    /// `expected.json` is not in the layout `sluice plugin test` reads.
    #[error(
        "{}: expected {{\"outputs\": {{name: [values]}}, \"failures\": [{{index, reason, part?}}]}}: {source}",
        path.display()
    )]
    Expected { path: PathBuf, source: serde_json::Error },
    /// Blessing met an output value that `expected.json` could not hold.
    #[error("output `{output}` record {position} is not JSON, so {BLESS_VAR} cannot write it: {source}")]
    OutputNotJson { output: String, position: usize, source: serde_json::Error },
    /// The result could not be put in the `expected.json` layout; every value has a JSON form,
    /// so this is unexpected.
    #[error("cannot render the result as expected.json: {source}")]
    Render { source: serde_json::Error },
    /// The plugin's result differs from `expected.json`, one sentence per difference.
    #[error("{} difference(s) from {}:\n{}", differences.len(), path.display(), differences.join("\n"))]
    Mismatch { path: PathBuf, differences: Vec<String> },
}

/// Runs `transform` on the sample batch in `dir` and compares its result with `expected.json`.
///
/// Each output value must be the expected one written compactly, byte for byte: the host
/// wants compact JSON with fields in the output schema's order, and `expected.json` may be
/// spaced for reading. An output missing from `expected.json` must receive nothing; failures
/// must match in order, index, reason and part, a part compared as JSON text without
/// insignificant whitespace (it is the input's own text, which need not be compact). With
/// [`BLESS_VAR`] set, `expected.json` is rewritten from the result instead.
///
/// # Errors
/// A sample file that cannot be read or parsed, or [`SamplesError::Mismatch`] listing every
/// difference.
pub fn check(
    dir: impl AsRef<Path>,
    transform: impl FnOnce(&[RecordIn]) -> BatchResult,
) -> Result<(), SamplesError> {
    let bless = std::env::var_os(BLESS_VAR).is_some();
    check_or_bless(dir.as_ref(), transform, bless)
}

/// [`check`] for a `#[test]`: panics with the error, which lists every difference.
///
/// # Panics
/// Whenever [`check`] returns an error.
#[track_caller]
pub fn assert_expected(dir: impl AsRef<Path>, transform: impl FnOnce(&[RecordIn]) -> BatchResult) {
    if let Err(error) = check(dir, transform) {
        panic!("{error}");
    }
}

fn check_or_bless(
    dir: &Path,
    transform: impl FnOnce(&[RecordIn]) -> BatchResult,
    bless: bool,
) -> Result<(), SamplesError> {
    let records = read_input(dir)?;
    let result = transform(&records);
    let failures = result.failures.iter().map(ExpectedFailure::of).collect::<Result<Vec<_>, _>>()?;
    let expected_path = dir.join("expected.json");
    if bless {
        let text = render_expected(&result, failures)?;
        return std::fs::write(&expected_path, text)
            .map_err(|source| SamplesError::Write { path: expected_path, source });
    }
    let expected = read_expected(&expected_path)?;
    let differences = differences(&expected, &result, &failures);
    if differences.is_empty() {
        Ok(())
    } else {
        Err(SamplesError::Mismatch { path: expected_path, differences })
    }
}

/// One `input.envelopes.jsonl` line, as `sluice plugin test` reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(default)]
    key: Option<String>,
    value: serde_json::Value,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The sample batch: `input.envelopes.jsonl` when present, else `input.jsonl`, as the host's
/// end-to-end test picks them.
fn read_input(dir: &Path) -> Result<Vec<RecordIn>, SamplesError> {
    let envelopes_path = dir.join("input.envelopes.jsonl");
    let envelopes = envelopes_path.is_file();
    let path = if envelopes { envelopes_path } else { dir.join("input.jsonl") };
    let text = read_text(&path)?;
    let lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
    if !envelopes {
        return Ok(lines.map(|(_, line)| RecordIn::from_value(line)).collect());
    }
    lines
        .map(|(number, line)| {
            let envelope_error =
                |source| SamplesError::Envelope { path: path.clone(), line: number + 1, source };
            let envelope: Envelope = serde_json::from_str(line).map_err(envelope_error)?;
            // Re-encoded rather than kept verbatim, exactly as `sluice plugin test` does, so
            // both runs hand the plugin the same bytes.
            let value = serde_json::to_vec(&envelope.value).map_err(envelope_error)?;
            let headers = envelope
                .headers
                .into_iter()
                .map(|(key, value)| Header { key, value: value.into_bytes() })
                .collect();
            Ok(RecordIn { key: envelope.key.map(String::into_bytes), value, headers })
        })
        .collect()
}

/// `expected.json`; an output or the failures left out expect nothing.
#[derive(Deserialize)]
struct Expected {
    #[serde(default)]
    outputs: BTreeMap<String, Vec<Box<RawValue>>>,
    #[serde(default)]
    failures: Vec<ExpectedFailure>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ExpectedFailure {
    index: u32,
    reason: String,
    /// Left out for a whole failure, which keeps most samples as short as before parts existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    part: Option<Box<RawValue>>,
}

impl ExpectedFailure {
    /// The `expected.json` form of a plugin's failure.
    fn of(failure: &Failure) -> Result<Self, SamplesError> {
        let part = failure.part.as_deref().map(part_as_json).transpose();
        let part = part.map_err(|source| SamplesError::Render { source })?;
        Ok(ExpectedFailure { index: failure.index, reason: failure.reason.clone(), part })
    }

    fn compact_part(&self) -> Option<Cow<'_, RawValue>> {
        self.part.as_deref().map(compact)
    }
}

/// The part as the JSON it is, or, when it is not JSON, as a JSON string of its text.
fn part_as_json(part: &[u8]) -> Result<Box<RawValue>, serde_json::Error> {
    let json = std::str::from_utf8(part).ok().and_then(|text| RawValue::from_string(text.to_owned()).ok());
    json.map_or_else(|| serde_json::value::to_raw_value(&String::from_utf8_lossy(part)), Ok)
}

impl PartialEq for ExpectedFailure {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
            && self.reason == other.reason
            && self.compact_part().as_deref().map(RawValue::get)
                == other.compact_part().as_deref().map(RawValue::get)
    }
}

impl Display for ExpectedFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "#{} {}", self.index, self.reason)?;
        match self.compact_part() {
            Some(part) => write!(formatter, " (part {})", part.get()),
            None => Ok(()),
        }
    }
}

fn read_expected(path: &Path) -> Result<Expected, SamplesError> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|source| SamplesError::Expected { path: path.to_owned(), source })
}

fn read_text(path: &Path) -> Result<String, SamplesError> {
    std::fs::read_to_string(path).map_err(|source| SamplesError::Read { path: path.to_owned(), source })
}

/// Every way `result` (with its `failures` in the expected layout) differs from `expected`, one
/// sentence each.
fn differences(expected: &Expected, result: &BatchResult, failures: &[ExpectedFailure]) -> Vec<String> {
    let mut actual_outputs: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for record in &result.records {
        let value = String::from_utf8_lossy(&record.value).into_owned();
        actual_outputs.entry(record.output.as_str()).or_default().push(value);
    }
    let names: BTreeSet<&str> =
        expected.outputs.keys().map(String::as_str).chain(actual_outputs.keys().copied()).collect();
    let mut differences = Vec::new();
    for name in names {
        let want: Vec<String> = expected
            .outputs
            .get(name)
            .into_iter()
            .flatten()
            .map(|value| compact(value).get().to_owned())
            .collect();
        let got = actual_outputs.get(name).map_or(&[][..], Vec::as_slice);
        compare_in_order(&format!("output `{name}` record"), &want, got, &mut differences);
    }
    compare_in_order("failure", &expected.failures, failures, &mut differences);
    differences
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

/// `result` in the `expected.json` layout: outputs that received records, one value a line.
fn render_expected(result: &BatchResult, failures: Vec<ExpectedFailure>) -> Result<String, SamplesError> {
    #[derive(Serialize)]
    struct Rendered<'a> {
        outputs: BTreeMap<&'a str, Vec<Box<RawValue>>>,
        failures: Vec<ExpectedFailure>,
    }
    let mut outputs: BTreeMap<&str, Vec<Box<RawValue>>> = BTreeMap::new();
    for record in &result.records {
        let values = outputs.entry(record.output.as_str()).or_default();
        let position = values.len();
        let text = String::from_utf8_lossy(&record.value).into_owned();
        let value = RawValue::from_string(text).map_err(|source| SamplesError::OutputNotJson {
            output: record.output.clone(),
            position,
            source,
        })?;
        values.push(value);
    }
    let text = serde_json::to_string_pretty(&Rendered { outputs, failures })
        .map_err(|source| SamplesError::Render { source })?;
    Ok(text + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordOut;

    fn samples_dir(input_name: &str, input: &str, expected: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(input_name), input).unwrap();
        std::fs::write(dir.path().join("expected.json"), expected).unwrap();
        dir
    }

    /// A plugin that sends each record's value to `echo`, fails records that are `"bad"` whole,
    /// and fails a part of records that are `"partly bad"`: JSON `[ "bad" ]` or, for
    /// `"partly bad text"`, the text `bad` that is not JSON.
    fn echo(batch: &[RecordIn]) -> BatchResult {
        let mut result = BatchResult { records: Vec::new(), failures: Vec::new() };
        for (index, record) in (0u32..).zip(batch) {
            if record.value == b"\"bad\"" {
                result.failures.push(Failure::whole(index, "bad record"));
            } else if record.value == b"\"partly bad\"" {
                result.failures.push(Failure::part(index, "bad part", &b"[ \"bad\" ]"[..]));
            } else if record.value == b"\"partly bad text\"" {
                result.failures.push(Failure::part(index, "bad part", &b"bad"[..]));
            } else {
                result.records.push(RecordOut {
                    output: "echo".to_owned(),
                    input: index,
                    key: record.key.clone(),
                    value: record.value.clone(),
                });
            }
        }
        result
    }

    fn differences_of(input: &str, expected: &str) -> Vec<String> {
        let dir = samples_dir("input.jsonl", input, expected);
        match check_or_bless(dir.path(), echo, false) {
            Ok(()) => Vec::new(),
            Err(SamplesError::Mismatch { differences, .. }) => differences,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn matching_result_passes_with_spaced_expected_values() {
        let input = "{\"a\":1,\"b\":[1,2]}\n\n\"bad\"\n";
        let expected = r#"{"outputs": {"echo": [ {"a": 1, "b": [1, 2]} ]},
            "failures": [{"index": 1, "reason": "bad record"}]}"#;
        assert_eq!(differences_of(input, expected), Vec::<String>::new());
    }

    #[test]
    fn field_order_and_compactness_must_match() {
        let differences =
            differences_of("{\"a\":1,\"b\":2}\n", r#"{"outputs": {"echo": [{"b": 2, "a": 1}]}}"#);
        assert_eq!(differences, [r#"output `echo` record 0: expected {"b":2,"a":1}, got {"a":1,"b":2}"#]);
        let differences = differences_of("{\"a\": 1}\n", r#"{"outputs": {"echo": [{"a": 1}]}}"#);
        assert_eq!(differences, [r#"output `echo` record 0: expected {"a":1}, got {"a": 1}"#]);
    }

    #[test]
    fn output_missing_from_expected_must_be_empty() {
        assert_eq!(differences_of("", r#"{"outputs": {}, "failures": []}"#), Vec::<String>::new());
        assert_eq!(
            differences_of("1\n", r#"{"outputs": {}, "failures": []}"#),
            ["output `echo` record 0: expected nothing, got 1"]
        );
    }

    #[test]
    fn missing_values_and_failures_are_each_named() {
        let expected = r#"{"outputs": {"echo": [1, 2], "other": [3]},
            "failures": [{"index": 0, "reason": "bad record"}, {"index": 5, "reason": "gone"}]}"#;
        assert_eq!(
            differences_of("\"bad\"\n1\n", expected),
            [
                "output `echo` record 1: expected 2, got nothing",
                "output `other` record 0: expected 3, got nothing",
                "failure 1: expected #5 gone, got nothing",
            ]
        );
    }

    #[test]
    fn mismatch_message_counts_and_lists_the_differences() {
        let dir = samples_dir("input.jsonl", "1\n\"bad\"\n", r#"{"outputs": {"echo": [2]}}"#);
        let message = check_or_bless(dir.path(), echo, false).unwrap_err().to_string();
        assert!(message.starts_with("2 difference(s) from "), "{message}");
        assert!(message.contains("expected.json:\noutput `echo` record 0: expected 2, got 1\n"), "{message}");
        assert!(message.ends_with("failure 0: expected nothing, got #1 bad record"), "{message}");
    }

    #[test]
    fn parts_are_compared_as_json_without_spacing() {
        let input = "\"partly bad\"\n\"partly bad text\"\n";
        let expected = r#"{"failures": [{"index": 0, "reason": "bad part", "part": ["bad"]},
            {"index": 1, "reason": "bad part", "part": "bad"}]}"#;
        assert_eq!(differences_of(input, expected), Vec::<String>::new());
    }

    #[test]
    fn a_missing_or_unexpected_part_is_a_difference() {
        let expected = r#"{"failures": [{"index": 0, "reason": "bad part"},
            {"index": 1, "reason": "bad record", "part": ["bad"]}]}"#;
        assert_eq!(
            differences_of("\"partly bad\"\n\"bad\"\n", expected),
            [
                r#"failure 0: expected #0 bad part, got #0 bad part (part ["bad"])"#,
                r#"failure 1: expected #1 bad record (part ["bad"]), got #1 bad record"#,
            ]
        );
    }

    #[test]
    fn bless_writes_a_part_only_where_there_is_one() {
        let dir = samples_dir("input.jsonl", "\"partly bad\"\n\"bad\"\n", "{}");
        check_or_bless(dir.path(), echo, true).unwrap();
        let written = std::fs::read_to_string(dir.path().join("expected.json")).unwrap();
        let written: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(
            written["failures"],
            serde_json::json!([
                {"index": 0, "reason": "bad part", "part": ["bad"]},
                {"index": 1, "reason": "bad record"},
            ])
        );
        check_or_bless(dir.path(), echo, false).unwrap();
    }

    #[test]
    fn envelopes_carry_key_and_headers_and_are_read_first() {
        let dir = samples_dir(
            "input.envelopes.jsonl",
            r#"{"key": "k1", "value": {"b": 1, "a": [ 2 ]}, "headers": {"h": "v"}}"#,
            r#"{"outputs": {"echo": [{"a": [2], "b": 1}]}}"#,
        );
        std::fs::write(dir.path().join("input.jsonl"), "ignored\n").unwrap();
        let mut seen = Vec::new();
        check_or_bless(
            dir.path(),
            |batch| {
                seen = batch.iter().map(|r| (r.key.clone(), r.headers.len())).collect();
                echo(batch)
            },
            false,
        )
        .unwrap();
        assert_eq!(seen, [(Some(b"k1".to_vec()), 1)]);
    }

    #[test]
    fn envelope_errors_name_the_file_and_line() {
        let dir = samples_dir("input.envelopes.jsonl", "{\"value\": 1}\n\n{\"valu\": 1}\n", "{}");
        let error = check_or_bless(dir.path(), echo, false).unwrap_err().to_string();
        assert!(error.contains("input.envelopes.jsonl:3: not a record envelope"), "{error}");
    }

    #[test]
    fn missing_files_and_bad_expected_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = check_or_bless(dir.path(), echo, false).unwrap_err().to_string();
        assert!(error.starts_with("cannot read ") && error.contains("input.jsonl"), "{error}");
        std::fs::write(dir.path().join("input.jsonl"), "1\n").unwrap();
        let error = check_or_bless(dir.path(), echo, false).unwrap_err().to_string();
        assert!(error.starts_with("cannot read ") && error.contains("expected.json"), "{error}");
        std::fs::write(dir.path().join("expected.json"), r#"{"failures": [{"index": 0}]}"#).unwrap();
        let error = check_or_bless(dir.path(), echo, false).unwrap_err().to_string();
        assert!(error.contains(r#"expected.json: expected {"outputs""#), "{error}");
    }

    #[test]
    fn bless_writes_what_check_then_accepts() {
        let dir = samples_dir("input.jsonl", "{\"a\":1}\n\"bad\"\n", "not even JSON");
        check_or_bless(dir.path(), echo, true).unwrap();
        let written = std::fs::read_to_string(dir.path().join("expected.json")).unwrap();
        assert!(written.contains("\"echo\": [\n      {\"a\":1}\n    ]"), "{written}");
        check_or_bless(dir.path(), echo, false).unwrap();
    }

    #[test]
    fn bless_refuses_output_that_is_not_json() {
        let dir = samples_dir("input.jsonl", "not json\n", "{}");
        let error = check_or_bless(dir.path(), echo, true).unwrap_err().to_string();
        assert!(error.starts_with("output `echo` record 0 is not JSON"), "{error}");
    }
}
