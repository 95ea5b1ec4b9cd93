//! Checking a plugin's logic against its `samples/` directory in a native `cargo test`.
//!
//! Every plugin keeps a sample batch and what it must give: `input.jsonl` or
//! `input.envelopes.jsonl`, and `expected.json`, in the samples format of the `sluice-samples`
//! crate. `sluice plugin test` replays the same files through the built component with the
//! same crate, so both read, compare and write them alike, and a change that breaks the sample
//! fails `cargo test` long before the end-to-end run.
//!
//! Native only: a plugin component has no files to read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;
use sluice_samples::{Expected, ExpectedFailure};

use crate::render::rows_json;
use crate::{BatchResult, Header, OutputInfo, RecordIn};

/// The environment variable that makes [`check`] rewrite `expected.json` instead of comparing.
///
/// For an intended change of output: run the tests once with it set, then review the diff.
pub const BLESS_VAR: &str = "SLUICE_BLESS";

/// Why a sample check could not run, or how its result differs from `expected.json`.
#[derive(Debug, thiserror::Error)]
pub enum SamplesError {
    /// A sample file is missing or not in the samples format.
    #[error(transparent)]
    Format(#[from] sluice_samples::SamplesError),
    /// Blessing could not replace `expected.json`.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// Blessing met a batch of rows that is not well formed or not of a declared output, which
    /// `expected.json` could not show.
    #[error("output `{output}`: {problem}, so {BLESS_VAR} cannot write it")]
    BadBatch { output: String, problem: String },
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
/// `outputs` are the plugin's declared outputs (its `info().outputs`): each batch of rows must
/// be well formed for its output's columns (see [`crate::render::check_batch`]), and rows and
/// failures compare as [`sluice_samples::differences`] says. With [`BLESS_VAR`] set,
/// `expected.json` is rewritten from the result instead.
///
/// # Errors
/// A sample file that cannot be read or parsed, or [`SamplesError::Mismatch`] listing every
/// difference.
pub fn check(
    dir: impl AsRef<Path>,
    outputs: &[OutputInfo],
    transform: impl FnOnce(&[RecordIn]) -> BatchResult,
) -> Result<(), SamplesError> {
    let bless = std::env::var_os(BLESS_VAR).is_some();
    check_or_bless(dir.as_ref(), outputs, transform, bless)
}

/// [`check`] for a `#[test]`: panics with the error, which lists every difference.
///
/// # Panics
/// Whenever [`check`] returns an error.
#[track_caller]
pub fn assert_expected(
    dir: impl AsRef<Path>,
    outputs: &[OutputInfo],
    transform: impl FnOnce(&[RecordIn]) -> BatchResult,
) {
    if let Err(error) = check(dir, outputs, transform) {
        panic!("{error}");
    }
}

fn check_or_bless(
    dir: &Path,
    outputs: &[OutputInfo],
    transform: impl FnOnce(&[RecordIn]) -> BatchResult,
    bless: bool,
) -> Result<(), SamplesError> {
    let records: Vec<RecordIn> = sluice_samples::read_records(&sluice_samples::input_file(dir))?
        .into_iter()
        .map(|record| RecordIn {
            key: record.key,
            value: record.value,
            headers: record.headers.into_iter().map(|(key, value)| Header { key, value }).collect(),
        })
        .collect();
    let result = transform(&records);
    let (actual, problems) = in_samples_layout(outputs, &result)?;
    let expected_path = dir.join("expected.json");
    if bless {
        if let Some((output, problem)) = problems.into_iter().next() {
            return Err(SamplesError::BadBatch { output, problem });
        }
        let text = sluice_samples::render(&actual).map_err(|source| SamplesError::Render { source })?;
        return std::fs::write(&expected_path, text)
            .map_err(|source| SamplesError::Write { path: expected_path, source });
    }
    let expected = sluice_samples::read_expected(&expected_path)?;
    let mut differences: Vec<String> =
        problems.into_iter().map(|(output, problem)| format!("output `{output}`: {problem}")).collect();
    differences.extend(sluice_samples::differences(&expected, &actual));
    if differences.is_empty() {
        Ok(())
    } else {
        Err(SamplesError::Mismatch { path: expected_path, differences })
    }
}

/// An output whose batch could not be read, and why.
type BatchProblem = (String, String);

/// The result in the samples layout, and what made a batch of rows unreadable: an output that
/// is not declared, a second batch for one output, or a batch not well formed for its columns
/// (see [`crate::render::check_batch`]).
fn in_samples_layout(
    outputs: &[OutputInfo],
    result: &BatchResult,
) -> Result<(Expected, Vec<BatchProblem>), SamplesError> {
    let render_error = |source| SamplesError::Render { source };
    let mut rows: BTreeMap<String, Vec<Box<RawValue>>> = BTreeMap::new();
    let mut problems = Vec::new();
    for batch in &result.outputs {
        let name = batch.output.as_str();
        let Some(info) = outputs.iter().find(|info| info.name == name) else {
            problems.push((name.to_owned(), "not a declared output".to_owned()));
            continue;
        };
        if rows.contains_key(name) {
            problems.push((name.to_owned(), "more than one batch of rows".to_owned()));
        }
        match rows_json(info, batch) {
            Ok(rendered) => {
                let rendered = rendered.into_iter().map(RawValue::from_string).collect::<Result<Vec<_>, _>>();
                rows.entry(name.to_owned()).or_default().extend(rendered.map_err(render_error)?);
            }
            Err(problem) => problems.push((name.to_owned(), problem)),
        }
    }
    let failures = result
        .failures
        .iter()
        .map(|failure| {
            let (field, reason) = (failure.field.clone(), failure.reason.clone());
            ExpectedFailure::new(u64::from(failure.index), field, reason, failure.part.as_deref())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(render_error)?;
    Ok((Expected { outputs: rows, failures }, problems))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde::Serialize;

    use super::*;
    use crate::Failure;
    use crate::json::string_content;
    use crate::rows::OutputRows;
    use crate::schema::{Column, ColumnType};

    const ECHO_COLUMNS: &[Column] =
        &[Column::required("value", ColumnType::Json), Column::nullable("text", ColumnType::Text)];

    fn declared() -> Vec<OutputInfo> {
        vec![OutputInfo::new("echo", ECHO_COLUMNS)]
    }

    fn samples_dir(input_name: &str, input: &str, expected: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(input_name), input).unwrap();
        std::fs::write(dir.path().join("expected.json"), expected).unwrap();
        dir
    }

    #[derive(Serialize)]
    struct EchoRow<'a> {
        value: &'a RawValue,
        text: Option<Cow<'a, str>>,
    }

    /// A plugin that sends each record's value to `echo` (and, for a JSON string, its text),
    /// fails records that are `"bad"` whole, `"bad field"` and values that are not JSON on the
    /// field `value`, and fails a part of records that are `"partly bad"`: JSON `[ "bad" ]` or,
    /// for `"partly bad text"`, the text `bad` that is not JSON.
    fn echo(batch: &[RecordIn]) -> BatchResult {
        let mut rows = OutputRows::new("echo", ECHO_COLUMNS);
        let mut failures = Vec::new();
        for (index, record) in (0u32..).zip(batch) {
            let Ok(value) = serde_json::from_slice::<&RawValue>(&record.value) else {
                failures.push(Failure::field(index, "value", "not JSON"));
                continue;
            };
            match value.get() {
                "\"bad\"" => failures.push(Failure::whole(index, "bad record")),
                "\"bad field\"" => failures.push(Failure::field(index, "value", "bad field")),
                "\"partly bad\"" => failures.push(Failure::part(index, "bad part", &b"[ \"bad\" ]"[..])),
                "\"partly bad text\"" => failures.push(Failure::part(index, "bad part", &b"bad"[..])),
                _ => {
                    let row = EchoRow { value, text: string_content(value) };
                    rows.push(index, record.key.as_deref(), &row).unwrap();
                }
            }
        }
        let outputs = if rows.is_empty() { Vec::new() } else { vec![rows.finish()] };
        BatchResult { outputs, failures }
    }

    fn differences_of(input: &str, expected: &str) -> Vec<String> {
        let dir = samples_dir("input.jsonl", input, expected);
        match check_or_bless(dir.path(), &declared(), echo, false) {
            Ok(()) => Vec::new(),
            Err(SamplesError::Mismatch { differences, .. }) => differences,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn matching_result_passes_with_spaced_expected_rows() {
        let input = "{\"a\":1,\"b\":[1,2]}\n\n\"bad\"\n\"x\"\n\"bad field\"\n";
        let expected = r#"{"outputs": {"echo": [ {"value": {"a": 1, "b": [1, 2]}}, {"text": "x", "value": "x"} ]},
            "failures": [{"index": 1, "reason": "bad record"},
                         {"index": 3, "field": "value", "reason": "bad field"}]}"#;
        assert_eq!(differences_of(input, expected), Vec::<String>::new());
    }

    #[test]
    fn rows_are_compared_as_json_values() {
        let differences = differences_of("{\"a\": 1}\n", r#"{"outputs": {"echo": [{"value": {"a": 2}}]}}"#);
        assert_eq!(
            differences,
            [r#"output `echo` row 0: expected {"value":{"a":2}}, got {"value":{"a":1}}"#]
        );
    }

    #[test]
    fn a_null_is_left_out_of_the_row() {
        let differences = differences_of("1\n", r#"{"outputs": {"echo": [{"value": 1, "text": null}]}}"#);
        assert_eq!(
            differences,
            [r#"output `echo` row 0: expected {"value":1,"text":null}, got {"value":1}"#]
        );
    }

    #[test]
    fn output_missing_from_expected_must_be_empty() {
        assert_eq!(differences_of("", r#"{"outputs": {}, "failures": []}"#), Vec::<String>::new());
        assert_eq!(
            differences_of("1\n", r#"{"outputs": {}, "failures": []}"#),
            [r#"output `echo` row 0: expected nothing, got {"value":1}"#]
        );
    }

    #[test]
    fn missing_rows_and_failures_are_each_named() {
        let expected = r#"{"outputs": {"echo": [{"value": 1}, {"value": 2}], "other": [{"n": 3}]},
            "failures": [{"index": 0, "reason": "bad record"}, {"index": 5, "reason": "gone"}]}"#;
        assert_eq!(
            differences_of("\"bad\"\n1\n", expected),
            [
                r#"output `echo` row 1: expected {"value":2}, got nothing"#,
                r#"output `other` row 0: expected {"n":3}, got nothing"#,
                "failure 1: expected #5 gone, got nothing",
            ]
        );
    }

    #[test]
    fn the_field_of_a_failure_must_match() {
        let expected = r#"{"failures": [{"index": 0, "reason": "not JSON"},
            {"index": 1, "field": "text", "reason": "bad field"}]}"#;
        assert_eq!(
            differences_of("nope\n\"bad field\"\n", expected),
            [
                "failure 0: expected #0 not JSON, got #0 field `value`: not JSON",
                "failure 1: expected #1 field `text`: bad field, got #1 field `value`: bad field",
            ]
        );
    }

    #[test]
    fn mismatch_message_counts_and_lists_the_differences() {
        let dir = samples_dir("input.jsonl", "1\n\"bad\"\n", r#"{"outputs": {"echo": [{"value": 2}]}}"#);
        let message = check_or_bless(dir.path(), &declared(), echo, false).unwrap_err().to_string();
        assert!(message.starts_with("2 difference(s) from "), "{message}");
        assert!(
            message
                .contains("expected.json:\noutput `echo` row 0: expected {\"value\":2}, got {\"value\":1}\n"),
            "{message}"
        );
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
    fn bless_writes_a_field_and_a_part_only_where_there_is_one() {
        let dir = samples_dir("input.jsonl", "\"partly bad\"\n\"bad\"\n\"bad field\"\n", "{}");
        check_or_bless(dir.path(), &declared(), echo, true).unwrap();
        let written = std::fs::read_to_string(dir.path().join("expected.json")).unwrap();
        let written: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(
            written["failures"],
            serde_json::json!([
                {"index": 0, "reason": "bad part", "part": ["bad"]},
                {"index": 1, "reason": "bad record"},
                {"index": 2, "field": "value", "reason": "bad field"},
            ])
        );
        check_or_bless(dir.path(), &declared(), echo, false).unwrap();
    }

    #[test]
    fn envelopes_carry_key_and_headers_and_are_read_first() {
        let dir = samples_dir(
            "input.envelopes.jsonl",
            r#"{"key": "k1", "value": {"b": 1, "a": [ 2 ]}, "headers": {"h": "v"}}"#,
            r#"{"outputs": {"echo": [{"value": {"a": [2], "b": 1}}]}}"#,
        );
        std::fs::write(dir.path().join("input.jsonl"), "ignored\n").unwrap();
        let mut seen = Vec::new();
        check_or_bless(
            dir.path(),
            &declared(),
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
        let error = check_or_bless(dir.path(), &declared(), echo, false).unwrap_err().to_string();
        assert!(error.contains("input.envelopes.jsonl:3: not a record envelope"), "{error}");
    }

    #[test]
    fn missing_files_and_bad_expected_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = check_or_bless(dir.path(), &declared(), echo, false).unwrap_err().to_string();
        assert!(error.starts_with("cannot read ") && error.contains("input.jsonl"), "{error}");
        std::fs::write(dir.path().join("input.jsonl"), "1\n").unwrap();
        let error = check_or_bless(dir.path(), &declared(), echo, false).unwrap_err().to_string();
        assert!(error.starts_with("cannot read ") && error.contains("expected.json"), "{error}");
        std::fs::write(dir.path().join("expected.json"), r#"{"failures": [{"index": 0}]}"#).unwrap();
        let error = check_or_bless(dir.path(), &declared(), echo, false).unwrap_err().to_string();
        assert!(error.contains(r#"expected.json: expected {"outputs""#), "{error}");
    }

    #[test]
    fn bless_writes_what_check_then_accepts() {
        let dir = samples_dir("input.jsonl", "{\"a\":1}\n\"bad\"\n", "not even JSON");
        check_or_bless(dir.path(), &declared(), echo, true).unwrap();
        let written = std::fs::read_to_string(dir.path().join("expected.json")).unwrap();
        assert!(written.contains("\"echo\": [\n      {\"value\":{\"a\":1}}\n    ]"), "{written}");
        check_or_bless(dir.path(), &declared(), echo, false).unwrap();
    }

    #[test]
    fn batches_of_undeclared_outputs_or_broken_columns_are_differences_and_cannot_be_blessed() {
        let broken = |_: &[RecordIn]| {
            let mut rows = OutputRows::new("echo", ECHO_COLUMNS);
            rows.row(0, None).json(&1).null().finish().unwrap();
            let mut batch = rows.finish();
            batch.columns.pop();
            let mut other = OutputRows::new("other", ECHO_COLUMNS);
            other.row(0, None).json(&2).null().finish().unwrap();
            BatchResult { outputs: vec![batch, other.finish()], failures: Vec::new() }
        };
        let dir = samples_dir("input.jsonl", "1\n", r#"{"outputs": {}}"#);
        let Err(SamplesError::Mismatch { differences, .. }) =
            check_or_bless(dir.path(), &declared(), broken, false)
        else {
            panic!("expected a mismatch");
        };
        assert_eq!(
            differences,
            [
                "output `echo`: 1 columns, but output `echo` declares 2",
                "output `other`: not a declared output"
            ]
        );
        let error = check_or_bless(dir.path(), &declared(), broken, true).unwrap_err().to_string();
        assert_eq!(
            error,
            "output `echo`: 1 columns, but output `echo` declares 2, so SLUICE_BLESS cannot write it"
        );
    }
}
