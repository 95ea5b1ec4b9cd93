//! `sluice plugin diff OLD NEW --input RECORDS`: both versions of a plugin on the same records,
//! and what changes between them, before the new one is deployed.
//!
//! Rows are compared per input record and output, position by position: equal, changed (both
//! versions made a row there, different), only in old, only in new. Failures are compared per
//! input record: appeared, disappeared, changed reason. The first differences are shown with the
//! record they came from; `--json` prints the same for scripts. Exit 1 when anything differs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use super::plugin_test::{call_limits, load_plugin, read_input};
use crate::plugin::{LoadedPlugin, PluginCall, PluginEngine, RecordIn};

#[derive(Debug, Args)]
pub struct PluginDiffArgs {
    /// The version running now (`.wasm`).
    old: PathBuf,
    /// The candidate (`.wasm`).
    new: PathBuf,
    /// Records to feed both: JSON lines, or `*.envelopes.jsonl` with keys and headers.
    #[arg(long)]
    input: PathBuf,
    /// A `key=value` passed to both plugins' `init`; repeatable.
    #[arg(long = "config", value_parser = super::plugin_test::parse_key_value)]
    config: Vec<(String, String)>,
    /// How many differences to show with their records.
    #[arg(long, default_value_t = 10)]
    show: usize,
    /// Print the comparison as one JSON object instead of text.
    #[arg(long)]
    json: bool,
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

/// What one version did with each input record: its rows per output, and why it failed.
#[derive(Debug, Default)]
struct Outcome {
    /// (output, input record) → rows, in the order the plugin made them.
    rows: BTreeMap<(String, u64), Vec<Value>>,
    /// input record → `field: reason` of each failure.
    failures: BTreeMap<u64, Vec<String>>,
}

/// Counts of one output's rows.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
struct RowCounts {
    equal: usize,
    changed: usize,
    only_in_old: usize,
    only_in_new: usize,
}

/// Counts of failures.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
struct FailureCounts {
    unchanged: usize,
    appeared: usize,
    disappeared: usize,
    changed_reason: usize,
}

/// One difference, with the record it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Difference {
    record: u64,
    /// The output for a row, absent for a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    what: &'static str,
    old: Option<Value>,
    new: Option<Value>,
    /// The record's value as text (lossy for bytes that are not UTF-8).
    input: String,
}

/// The whole comparison.
#[derive(Debug, Default, Serialize)]
struct Comparison {
    records: usize,
    outputs: BTreeMap<String, RowCounts>,
    failures: FailureCounts,
    /// All differences, in record order (only the first `--show` are printed as text).
    differences: Vec<Difference>,
}

impl Comparison {
    fn differs(&self) -> bool {
        !self.differences.is_empty()
    }
}

fn failure_text(field: Option<&str>, reason: &str) -> String {
    match field {
        Some(field) => format!("{field}: {reason}"),
        None => reason.to_owned(),
    }
}

/// Runs `plugin` over `records` in batches; a batch whose call fails fails each of its records.
fn run_plugin(
    plugin: &LoadedPlugin,
    call: &PluginCall,
    records: &[RecordIn],
    batch_size: usize,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut first = 0u64;
    for batch in records.chunks(batch_size) {
        match plugin.transform(call, batch) {
            Ok(result) => {
                for rows in result.outputs {
                    let name = rows.schema().name.clone();
                    for row in 0..rows.len() {
                        let input = first + u64::from(rows.input(row).unwrap_or_default());
                        let value = serde_json::from_slice(&rows.json(row)).context("a row as JSON")?;
                        outcome.rows.entry((name.clone(), input)).or_default().push(value);
                    }
                }
                for failure in result.failures {
                    let text = failure_text(failure.field.as_deref(), &failure.reason);
                    outcome.failures.entry(first + u64::from(failure.index)).or_default().push(text);
                }
            }
            Err(error) => {
                for index in first..first + batch.len() as u64 {
                    outcome.failures.entry(index).or_default().push(error.to_string());
                }
            }
        }
        first += batch.len() as u64;
    }
    Ok(outcome)
}

/// Compares what the two versions did with `records`.
fn compare(old: &Outcome, new: &Outcome, records: &[RecordIn]) -> Comparison {
    let input = |record: u64| {
        records
            .get(usize::try_from(record).unwrap_or(usize::MAX))
            .map_or_else(String::new, |r| String::from_utf8_lossy(&r.value).into_owned())
    };
    let mut comparison = Comparison { records: records.len(), ..Comparison::default() };
    let keys: BTreeSet<&(String, u64)> = old.rows.keys().chain(new.rows.keys()).collect();
    let none = Vec::new();
    for key in keys {
        let (output, record) = key;
        let counts = comparison.outputs.entry(output.clone()).or_default();
        let (old_rows, new_rows) = (old.rows.get(key).unwrap_or(&none), new.rows.get(key).unwrap_or(&none));
        for position in 0..old_rows.len().max(new_rows.len()) {
            let (before, after) = (old_rows.get(position), new_rows.get(position));
            let what = match (before, after) {
                (Some(a), Some(b)) if a == b => {
                    counts.equal += 1;
                    continue;
                }
                (Some(_), Some(_)) => {
                    counts.changed += 1;
                    "row changed"
                }
                (Some(_), None) => {
                    counts.only_in_old += 1;
                    "row only in old"
                }
                (None, _) => {
                    counts.only_in_new += 1;
                    "row only in new"
                }
            };
            comparison.differences.push(Difference {
                record: *record,
                output: Some(output.clone()),
                what,
                old: before.cloned(),
                new: after.cloned(),
                input: input(*record),
            });
        }
    }
    let records_failed: BTreeSet<u64> = old.failures.keys().chain(new.failures.keys()).copied().collect();
    for record in records_failed {
        let (before, after) = (old.failures.get(&record), new.failures.get(&record));
        let what = match (before, after) {
            (Some(a), Some(b)) if a == b => {
                comparison.failures.unchanged += 1;
                continue;
            }
            (Some(_), Some(_)) => {
                comparison.failures.changed_reason += 1;
                "failure changed reason"
            }
            (Some(_), None) => {
                comparison.failures.disappeared += 1;
                "failure disappeared"
            }
            (None, _) => {
                comparison.failures.appeared += 1;
                "failure appeared"
            }
        };
        let text = |reasons: Option<&Vec<String>>| reasons.map(|reasons| Value::from(reasons.join("; ")));
        comparison.differences.push(Difference {
            record,
            output: None,
            what,
            old: text(before),
            new: text(after),
            input: input(record),
        });
    }
    comparison.differences.sort_by_key(|difference| difference.record);
    comparison
}

fn print_text(comparison: &Comparison, old: &LoadedPlugin, new: &LoadedPlugin, show: usize) {
    println!(
        "{} {} → {} {}: {} records",
        old.name(),
        old.version(),
        new.name(),
        new.version(),
        comparison.records
    );
    for (output, counts) in &comparison.outputs {
        println!(
            "  {output}: {} equal, {} changed, {} only in old, {} only in new",
            counts.equal, counts.changed, counts.only_in_old, counts.only_in_new
        );
    }
    let failures = &comparison.failures;
    println!(
        "  failures: {} unchanged, {} appeared, {} disappeared, {} changed reason",
        failures.unchanged, failures.appeared, failures.disappeared, failures.changed_reason
    );
    let render = |value: &Option<Value>| value.as_ref().map_or_else(|| "-".to_owned(), Value::to_string);
    for difference in comparison.differences.iter().take(show) {
        let output = difference.output.as_deref().map(|output| format!(" ({output})")).unwrap_or_default();
        println!("\nrecord {}: {}{output}", difference.record, difference.what);
        println!("  input: {}", difference.input);
        println!("  old:   {}", render(&difference.old));
        println!("  new:   {}", render(&difference.new));
    }
    if comparison.differences.len() > show {
        println!("\n… and {} more differences", comparison.differences.len() - show);
    }
    if !comparison.differs() {
        println!("  no differences");
    }
}

pub fn run(args: PluginDiffArgs) -> anyhow::Result<ExitCode> {
    let limits = call_limits(args.batch_size, args.timeout_ms, args.memory_mb)?;
    let engine = PluginEngine::new(limits.memory_bytes)?;
    let (old, new) = (load_plugin(&engine, &args.old)?, load_plugin(&engine, &args.new)?);
    let records = read_input(&args.input)?;
    let call = PluginCall { config: args.config.clone(), limits };
    let before = run_plugin(&old, &call, &records, args.batch_size)?;
    let after = run_plugin(&new, &call, &records, args.batch_size)?;
    let comparison = compare(&before, &after, &records);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        print_text(&comparison, &old, &new, args.show);
    }
    Ok(if comparison.differs() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(value: &str) -> RecordIn {
        RecordIn { key: None, value: value.as_bytes().to_vec(), headers: Vec::new() }
    }

    fn outcome(rows: &[(&str, u64, Value)], failures: &[(u64, &str)]) -> Outcome {
        let mut outcome = Outcome::default();
        for (output, input, row) in rows {
            outcome.rows.entry(((*output).to_owned(), *input)).or_default().push(row.clone());
        }
        for (input, reason) in failures {
            outcome.failures.entry(*input).or_default().push((*reason).to_owned());
        }
        outcome
    }

    #[test]
    fn rows_and_failures_are_compared_per_record_and_counted() {
        let records: Vec<RecordIn> = ["r0", "r1", "r2", "r3", "r4"].map(record).into();
        let old = outcome(
            &[("users", 0, json!({"id": 1})), ("users", 1, json!({"id": 2})), ("users", 1, json!({"id": 3}))],
            &[(2, "bad"), (3, "worse")],
        );
        let new = outcome(
            &[("users", 0, json!({"id": 1})), ("users", 1, json!({"id": 9})), ("users", 2, json!({"id": 4}))],
            &[(3, "other reason"), (4, "new failure")],
        );
        let comparison = compare(&old, &new, &records);
        assert_eq!(
            comparison.outputs["users"],
            RowCounts { equal: 1, changed: 1, only_in_old: 1, only_in_new: 1 }
        );
        assert_eq!(
            comparison.failures,
            FailureCounts { unchanged: 0, appeared: 1, disappeared: 1, changed_reason: 1 }
        );
        let listed: Vec<(u64, &str)> =
            comparison.differences.iter().map(|difference| (difference.record, difference.what)).collect();
        assert_eq!(
            listed,
            [
                (1, "row changed"),
                (1, "row only in old"),
                (2, "row only in new"),
                (2, "failure disappeared"),
                (3, "failure changed reason"),
                (4, "failure appeared"),
            ]
        );
        assert_eq!(comparison.differences[0].input, "r1", "each difference carries its record");
        assert!(comparison.differs());
    }

    #[test]
    fn the_same_results_are_no_difference() {
        let records: Vec<RecordIn> = ["a", "b"].map(record).into();
        let same = || outcome(&[("users", 0, json!({"id": 1}))], &[(1, "bad")]);
        let comparison = compare(&same(), &same(), &records);
        assert!(!comparison.differs());
        assert_eq!(comparison.failures.unchanged, 1);
        assert_eq!(comparison.outputs["users"].equal, 1);
    }
}
