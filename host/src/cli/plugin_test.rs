//! `sluice plugin test`: run a plugin on a file of records with no services at all, print what
//! each named output receives and which records failed, and compare with an expected file.
//!
//! Input: one record per non-empty line, the line being the record's value. A file whose name
//! ends in `.envelopes.jsonl` holds one `{"key": string|null, "value": any JSON,
//! "headers": {name: string}}` object per line instead, for plugins that read keys or headers.
//!
//! Output and `--expect` file: `{"outputs": {"<output>": [values...]}, "failures":
//! [{"index": n, "field": "...", "reason": "...", "part": value}]}` (`field` only when the plugin
//! named one); an output missing from the expected file
//! expects nothing. `part` appears only when the plugin failed a part of the record, shown as
//! JSON when it is JSON and as a string of its text otherwise, like output values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plugin::{CompileCache, Header, LoadedPlugin, PluginCall, PluginEngine, PluginLimits, RecordIn};

#[derive(Debug, Args)]
pub struct PluginTestArgs {
    /// The plugin component (`.wasm`).
    plugin: PathBuf,
    /// Records to feed it: JSON lines, or `*.envelopes.jsonl` with keys and headers.
    #[arg(long)]
    input: PathBuf,
    /// Expected outputs and failures; the command fails when they differ.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// A `key=value` passed to the plugin's `init`; repeatable.
    #[arg(long = "config", value_parser = parse_key_value)]
    config: Vec<(String, String)>,
    /// Records per plugin call.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Wall-time limit per call, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Memory cap per call, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_mb: u64,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{text}` is not key=value"))
}

/// What a run produced, in the same shape as the `--expect` file.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct TestReport {
    #[serde(default)]
    outputs: BTreeMap<String, Vec<Value>>,
    #[serde(default)]
    failures: Vec<ReportedFailure>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ReportedFailure {
    index: u64,
    /// The field the plugin named, left out when it named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    reason: String,
    /// Left out for a whole failure, so most expected files need not mention parts at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    part: Option<Value>,
}

/// A failure as people read it: the field, if any, then the reason.
fn describe(failure: &ReportedFailure) -> String {
    match &failure.field {
        Some(field) => format!("{field}: {}", failure.reason),
        None => failure.reason.clone(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(default)]
    key: Option<String>,
    value: Value,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

pub fn run(args: PluginTestArgs) -> anyhow::Result<ExitCode> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let limits = PluginLimits {
        timeout: Duration::from_millis(args.timeout_ms),
        memory_bytes: args.memory_mb.saturating_mul(1 << 20),
    };
    let engine = PluginEngine::new(limits.memory_bytes)?;
    let plugin = LoadedPlugin::from_file(&engine, &CompileCache::disabled(), &args.plugin)
        .with_context(|| format!("cannot load {}", args.plugin.display()))?;
    let records = read_records(&args.input)?;
    let call = PluginCall { config: args.config.clone(), limits };

    let mut report = TestReport::default();
    for output in &plugin.info().outputs {
        report.outputs.insert(output.name.clone(), Vec::new());
    }
    let mut first_index = 0u64;
    for batch in records.chunks(args.batch_size) {
        match plugin.transform(&call, batch) {
            Ok(result) => {
                for rows in result.outputs {
                    let values = report.outputs.entry(rows.schema().name.clone()).or_default();
                    values.extend((0..rows.len()).map(|row| value_of(&rows.json(row))));
                }
                report.failures.extend(result.failures.into_iter().map(|failure| ReportedFailure {
                    index: first_index + u64::from(failure.index),
                    field: failure.field,
                    reason: failure.reason,
                    part: failure.part.as_deref().map(value_of),
                }));
            }
            Err(error) => {
                let reason = error.to_string();
                report.failures.extend((0..batch.len() as u64).map(|i| ReportedFailure {
                    index: first_index + i,
                    field: None,
                    reason: reason.clone(),
                    part: None,
                }));
            }
        }
        first_index += batch.len() as u64;
    }

    println!("{}", serde_json::to_string_pretty(&report)?);
    let counts: Vec<String> =
        report.outputs.iter().map(|(name, values)| format!("{name}: {}", values.len())).collect();
    eprintln!(
        "{} {}: {} records in; {}; {} failures",
        plugin.name(),
        plugin.version(),
        records.len(),
        counts.join(", "),
        report.failures.len()
    );

    let Some(expect_path) = &args.expect else { return Ok(ExitCode::SUCCESS) };
    let expected = read_expected(expect_path)?;
    let differences = compare(&expected, &report);
    if differences.is_empty() {
        eprintln!("matches {}", expect_path.display());
        return Ok(ExitCode::SUCCESS);
    }
    for difference in &differences {
        eprintln!("mismatch: {difference}");
    }
    eprintln!("{} difference(s) from {}", differences.len(), expect_path.display());
    Ok(ExitCode::FAILURE)
}

fn value_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn read_records(path: &Path) -> anyhow::Result<Vec<RecordIn>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let envelopes = path.to_string_lossy().ends_with(".envelopes.jsonl");
    let mut records = Vec::new();
    for (number, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        if !envelopes {
            records.push(RecordIn { key: None, value: line.as_bytes().to_vec(), headers: Vec::new() });
            continue;
        }
        let envelope: Envelope = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a record envelope", path.display(), number + 1))?;
        records.push(RecordIn {
            key: envelope.key.map(String::into_bytes),
            value: serde_json::to_vec(&envelope.value)?,
            headers: envelope
                .headers
                .into_iter()
                .map(|(key, value)| Header { key, value: value.into_bytes() })
                .collect(),
        });
    }
    Ok(records)
}

fn read_expected(path: &Path) -> anyhow::Result<TestReport> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected {{\"outputs\": {{name: [values]}}, \"failures\": [{{index, reason, part?}}]}}",
            path.display()
        )
    })
}

/// Human-readable differences between the expected and the actual report.
fn compare(expected: &TestReport, actual: &TestReport) -> Vec<String> {
    let mut differences = Vec::new();
    let names: std::collections::BTreeSet<&String> =
        expected.outputs.keys().chain(actual.outputs.keys()).collect();
    for name in names {
        let want = expected.outputs.get(name).map_or(&[][..], Vec::as_slice);
        let got = actual.outputs.get(name).map_or(&[][..], Vec::as_slice);
        if want.len() != got.len() {
            differences.push(format!("output `{name}`: expected {} records, got {}", want.len(), got.len()));
        }
        if let Some(i) = (0..want.len().min(got.len())).find(|&i| want[i] != got[i]) {
            differences.push(format!("output `{name}` record {i}: expected {} got {}", want[i], got[i]));
        }
    }
    if expected.failures != actual.failures {
        let render = |failures: &[ReportedFailure]| {
            let render_one = |f: &ReportedFailure| match &f.part {
                Some(part) => format!("#{} {} (part {part})", f.index, describe(f)),
                None => format!("#{} {}", f.index, describe(f)),
            };
            failures.iter().map(render_one).collect::<Vec<_>>().join("; ")
        };
        differences.push(format!(
            "failures: expected [{}] got [{}]",
            render(&expected.failures),
            render(&actual.failures)
        ));
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outputs: &[(&str, Vec<Value>)], failures: &[(u64, &str)]) -> TestReport {
        TestReport {
            outputs: outputs.iter().map(|(n, v)| (n.to_string(), v.clone())).collect(),
            failures: failures
                .iter()
                .map(|(i, r)| ReportedFailure { index: *i, field: None, reason: r.to_string(), part: None })
                .collect(),
        }
    }

    #[test]
    fn a_part_is_printed_only_when_present_and_compared() {
        let mut actual = report(&[], &[(0, "whole"), (1, "[1]: bad")]);
        actual.failures[1].part = Some(value_of(br#"[ {"a": 1} ]"#));
        let printed = serde_json::to_value(&actual).unwrap();
        assert_eq!(printed["failures"][0], serde_json::json!({"index": 0, "reason": "whole"}));
        assert_eq!(printed["failures"][1]["part"], serde_json::json!([{"a": 1}]));
        let expected: TestReport = serde_json::from_value(printed).unwrap();
        assert!(compare(&expected, &actual).is_empty());
        let without_part = report(&[], &[(0, "whole"), (1, "[1]: bad")]);
        let differences = compare(&without_part, &actual);
        assert_eq!(
            differences,
            [r#"failures: expected [#0 whole; #1 [1]: bad] got [#0 whole; #1 [1]: bad (part [{"a":1}])]"#]
        );
    }

    #[test]
    fn an_output_missing_from_the_expectation_must_be_empty() {
        let expected = report(&[], &[]);
        assert!(compare(&expected, &report(&[("out", vec![])], &[])).is_empty());
        assert_eq!(compare(&expected, &report(&[("out", vec![Value::from(1)])], &[])).len(), 1);
    }

    #[test]
    fn differing_values_and_failures_are_reported() {
        let expected = report(&[("out", vec![Value::from(1)])], &[(0, "bad")]);
        let actual = report(&[("out", vec![Value::from(2)])], &[(1, "bad")]);
        let differences = compare(&expected, &actual);
        assert_eq!(differences.len(), 2, "{differences:?}");
        assert!(differences[0].contains("record 0"));
    }

    #[test]
    fn key_value_options_need_an_equals_sign() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_key_value("ab").is_err());
    }
}
