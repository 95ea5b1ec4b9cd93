//! `sluice plugin test`: run a plugin on a file of records with no services at all, print what
//! each named output receives and which records failed, and compare with an expected file.
//!
//! The input, the printed result and the `--expect` file are in the samples format the SDK's
//! native checks use too (the `sluice-samples` crate reads, compares and writes it for both):
//! one record value per line, or `*.envelopes.jsonl` with keys and headers; `{"outputs":
//! {name: [rows]}, "failures": [{index, field?, reason, part?}]}`, rows and parts compared as
//! JSON values.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use sluice_samples::{Expected, ExpectedFailure};

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

pub(super) fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{text}` is not key=value"))
}

/// The per-call limits the plugin commands take as `--timeout-ms` and `--memory-mb`, checked
/// with `--batch-size`.
///
/// # Errors
/// A batch size of 0.
pub(super) fn call_limits(
    batch_size: usize,
    timeout_ms: u64,
    memory_mb: u64,
) -> anyhow::Result<PluginLimits> {
    if batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    Ok(PluginLimits {
        timeout: Duration::from_millis(timeout_ms),
        memory_bytes: memory_mb.saturating_mul(1 << 20),
    })
}

/// The component at `path`, compiled for `engine` without the host's cache.
///
/// # Errors
/// When it cannot be read or is not a plugin this host runs, naming the file.
pub(super) fn load_plugin(engine: &PluginEngine, path: &Path) -> anyhow::Result<LoadedPlugin> {
    LoadedPlugin::from_file(engine, &CompileCache::disabled(), path)
        .with_context(|| format!("cannot load {}", path.display()))
}

/// The records of an input file in the samples format, as plugin calls take them.
///
/// # Errors
/// When the file cannot be read or a line is not a record.
pub(super) fn read_input(path: &Path) -> anyhow::Result<Vec<RecordIn>> {
    Ok(sluice_samples::read_records(path)?
        .into_iter()
        .map(|record| RecordIn {
            key: record.key,
            value: record.value,
            headers: record.headers.into_iter().map(|(key, value)| Header { key, value }).collect(),
        })
        .collect())
}

pub fn run(args: PluginTestArgs) -> anyhow::Result<ExitCode> {
    let limits = call_limits(args.batch_size, args.timeout_ms, args.memory_mb)?;
    let engine = PluginEngine::new(limits.memory_bytes)?;
    let plugin = load_plugin(&engine, &args.plugin)?;
    let records = read_input(&args.input)?;
    let call = PluginCall { config: args.config.clone(), limits };

    let mut report = Expected::default();
    for output in &plugin.info().outputs {
        report.outputs.insert(output.name.clone(), Vec::new());
    }
    let mut first_index = 0u64;
    for batch in records.chunks(args.batch_size) {
        match plugin.transform(&call, batch) {
            Ok(result) => {
                for rows in result.outputs {
                    let values = report.outputs.entry(rows.schema().name.clone()).or_default();
                    for row in 0..rows.len() {
                        values.push(sluice_samples::part_as_json(&rows.json(row))?);
                    }
                }
                for failure in result.failures {
                    let index = first_index + u64::from(failure.index);
                    let part = failure.part.as_deref();
                    report.failures.push(ExpectedFailure::new(index, failure.field, failure.reason, part)?);
                }
            }
            Err(error) => {
                let reason = error.to_string();
                for index in first_index..first_index + batch.len() as u64 {
                    report.failures.push(ExpectedFailure::new(index, None, reason.clone(), None)?);
                }
            }
        }
        first_index += batch.len() as u64;
    }

    print!("{}", sluice_samples::render(&report)?);
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
    let expected = sluice_samples::read_expected(expect_path)?;
    let differences = sluice_samples::differences(&expected, &report);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_options_need_an_equals_sign() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_key_value("ab").is_err());
    }
}
