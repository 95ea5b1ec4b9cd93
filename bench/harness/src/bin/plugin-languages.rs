//! `plugin-languages`: the same plugin written in several languages, as components in sluice's
//! plugin runtime, on the same records: what each costs to load, to start and to run.
//!
//! For each `--plugin LABEL=PATH` (validate-user-status in Rust, Python and JavaScript, say) it
//! measures, with the host's default limits and no compile cache:
//! - **compile**: loading the component, Cranelift's compilation included (what a first load
//!   or `sluice plugin compile` pays once per version);
//! - **instantiate**: a fresh instance, `init` and a call on an empty batch (the fastest of
//!   five), what a call pays when no idle instance is waiting;
//! - **first call**: the first batch of `--batch-records` records after loading, its instance
//!   included;
//! - **records/s**: passes over every record in batches of `--batch-records`, an idle instance
//!   reused as the host's calls do (the fastest pass);
//! - **memory**: how far the instance's linear memory grew over those calls.
//!
//! With `--native`, the Rust plugin `validate-user-status` also runs natively on the same
//! batches, for scale. Every contender must produce the same rows per output and failures, or
//! the run fails. Prints one JSON line per contender.
//!
//! ```text
//! plugin-languages --records us-1m.jsonl --native \
//!     --plugin rust=/tmp/plugins/validate-user-status.wasm \
//!     --plugin python=/tmp/plugins/ports/python/validate-user-status.wasm
//! ```

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use serde_json::json;
use sluice::plugin::{CompileCache, LoadedPlugin, PluginCall, PluginEngine, PluginLimits, RecordIn};
use sluice_bench::native::{host_rows, host_schema};

#[derive(Debug, Parser)]
struct Args {
    /// The records, one per line (JSON lines); blank lines are left out.
    #[arg(long)]
    records: PathBuf,
    /// A contender as LABEL=PATH of its component; repeat for each.
    #[arg(long = "plugin", value_parser = parse_contender, required = true)]
    plugins: Vec<(String, PathBuf)>,
    /// Records per call (the user-status pipeline's `batch_records`).
    #[arg(long, default_value_t = 5000)]
    batch_records: usize,
    /// Timed passes over every record per contender, after the first call's; the fastest counts.
    #[arg(long, default_value_t = 2)]
    passes: usize,
    /// Also run validate-user-status natively on the same batches.
    #[arg(long)]
    native: bool,
}

fn parse_contender(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((label, path)) if !label.is_empty() && !path.is_empty() => {
            Ok((label.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("expected LABEL=PATH, got `{text}`")),
    }
}

/// Rows per output and failures over one pass, to check that the contenders agree.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Produced {
    rows: BTreeMap<String, usize>,
    failures: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.batch_records == 0 || args.passes == 0 {
        bail!("--batch-records and --passes must be at least 1");
    }
    let text = std::fs::read_to_string(&args.records)
        .with_context(|| format!("cannot read {}", args.records.display()))?;
    let values: Vec<Vec<u8>> =
        text.lines().filter(|line| !line.trim().is_empty()).map(|line| line.as_bytes().to_vec()).collect();
    drop(text);
    let records: Vec<RecordIn> = values
        .iter()
        .map(|value| RecordIn { key: None, value: value.clone(), headers: Vec::new() })
        .collect();

    let limits = PluginLimits::default();
    let call = PluginCall { config: Vec::new(), limits };
    let engine = PluginEngine::new(limits.memory_bytes)?;
    let mut agreed: Option<(String, Produced)> = None;
    let mut agree = |label: &str, produced: &Produced| -> anyhow::Result<()> {
        match &agreed {
            Some((first, want)) if want != produced => {
                bail!("{label} gave {produced:?}, {first} gave {want:?}: the contenders disagree")
            }
            Some(_) => Ok(()),
            None => {
                agreed = Some((label.to_string(), produced.clone()));
                Ok(())
            }
        }
    };

    if args.native {
        let native_records: Vec<sluice_plugin_sdk::RecordIn> =
            values.iter().map(|value| sluice_plugin_sdk::RecordIn::from_value(value.clone())).collect();
        let schemas = validate_user_status::declared_outputs()
            .iter()
            .map(host_schema)
            .collect::<anyhow::Result<Vec<_>>>()?;
        // Like the components' passes, the rows end in the host's typed rows.
        let pass = || -> anyhow::Result<Produced> {
            let mut produced = Produced::default();
            for batch in native_records.chunks(args.batch_records) {
                let result =
                    <validate_user_status::ValidateUserStatus as sluice_plugin_sdk::Plugin>::transform(
                        batch,
                        &(),
                    );
                produced.failures += result.failures.len();
                for rows in result.outputs {
                    let schema = schemas
                        .iter()
                        .find(|schema| schema.name == rows.output)
                        .context("undeclared output")?;
                    let rows = black_box(host_rows(schema, rows)?);
                    *produced.rows.entry(schema.name.clone()).or_default() += rows.len();
                }
            }
            Ok(produced)
        };
        let (time, produced) = fastest(args.passes, pass)?;
        agree("native", &produced)?;
        println!(
            "{}",
            json!({
                "bench": "plugin-languages",
                "label": "rust (native)",
                "native": true,
                "records": records.len(),
                "batch_records": args.batch_records,
                "records_per_s": (records.len() as f64 / time.as_secs_f64()).round(),
                "rows": produced.rows,
                "failures": produced.failures,
            })
        );
    }

    for (label, path) in &args.plugins {
        let component_bytes =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
        let started = Instant::now();
        let plugin = LoadedPlugin::from_file(&engine, &CompileCache::disabled(), path)
            .with_context(|| format!("cannot load {}", path.display()))?;
        let compile = started.elapsed();

        let first_batch = &records[..records.len().min(args.batch_records)];
        let started = Instant::now();
        plugin.transform(&call, first_batch)?;
        let first_call = started.elapsed();

        let mut instantiate = Duration::MAX;
        for _ in 0..5 {
            let started = Instant::now();
            plugin.transform_in_fresh_instance(&call, &[])?;
            instantiate = instantiate.min(started.elapsed());
        }

        let mut best = Duration::MAX;
        let mut produced = Produced::default();
        for _ in 0..args.passes {
            let started = Instant::now();
            let mut pass = Produced::default();
            for batch in records.chunks(args.batch_records) {
                let result = black_box(plugin.transform(&call, batch)?);
                pass.failures += result.failures.len();
                for rows in &result.outputs {
                    *pass.rows.entry(rows.schema().name.clone()).or_default() += rows.len();
                }
            }
            best = best.min(started.elapsed());
            produced = pass;
        }
        agree(label, &produced)?;
        let memory = plugin.idle_memory_bytes().unwrap_or(0);
        let ms = |time: Duration| (time.as_secs_f64() * 1e4).round() / 10.0;
        println!(
            "{}",
            json!({
                "bench": "plugin-languages",
                "label": label,
                "plugin": plugin.name(),
                "native": false,
                "component_bytes": component_bytes,
                "records": records.len(),
                "batch_records": args.batch_records,
                "compile_ms": ms(compile),
                "instantiate_ms": ms(instantiate),
                "first_call_ms": ms(first_call),
                "memory_bytes": memory,
                "memory_limit_bytes": limits.memory_bytes,
                "timeout_ms": limits.timeout.as_millis(),
                "records_per_s": (records.len() as f64 / best.as_secs_f64()).round(),
                "rows": produced.rows,
                "failures": produced.failures,
            })
        );
    }
    Ok(())
}

/// Runs `pass` `passes` times (at least once); the shortest time and what that pass produced.
///
/// # Errors
/// The first error of a pass.
fn fastest<T>(passes: usize, mut pass: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..passes.max(1) {
        let started = Instant::now();
        let produced = pass()?;
        let elapsed = started.elapsed();
        if best.as_ref().is_none_or(|(time, _)| elapsed < *time) {
            best = Some((elapsed, produced));
        }
    }
    best.context("no pass ran")
}
