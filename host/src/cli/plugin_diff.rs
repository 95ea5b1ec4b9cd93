//! `sluice plugin diff OLD NEW --input RECORDS`: both versions of a plugin on the same records,
//! and what changes between them, before the new one is deployed.
//!
//! Rows are compared per input record and output, position by position: equal, changed (both
//! versions made a row there, different), only in old, only in new. Failures are compared per
//! input record: appeared, disappeared, changed reason. The first differences are shown with the
//! record they came from; `--json` prints the same for scripts. Exit 1 when anything differs.
//! The comparison itself is [`crate::plugin::compare`], shared with shadowing in a running host.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::plugin_test::{call_limits, load_plugin, read_input};
use crate::plugin::compare::{Comparison, Outcome, compare};
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

/// Runs `plugin` over `records` in batches; a batch whose call fails fails each of its records.
fn run_plugin(plugin: &LoadedPlugin, call: &PluginCall, records: &[RecordIn], batch_size: usize) -> Outcome {
    let mut outcome = Outcome::default();
    let mut first = 0u64;
    for batch in records.chunks(batch_size) {
        match plugin.transform(call, batch) {
            Ok(result) => outcome.add_result(first, &result),
            Err(error) => outcome.fail_batch(first, batch.len(), &error.to_string()),
        }
        first += batch.len() as u64;
    }
    outcome
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
    let before = run_plugin(&old, &call, &records, args.batch_size);
    let after = run_plugin(&new, &call, &records, args.batch_size);
    let comparison = compare(&before, &after, &records);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        print_text(&comparison, &old, &new, args.show);
    }
    Ok(if comparison.differs() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
