//! `plugin-ratio`: the normalization plugin run as WebAssembly against the same source run
//! natively, on the same batches.
//!
//! Generates `--bodies` SendGrid webhook bodies of `--events-per-body` events (about 1%
//! malformed), then for each `--batch-records` size times passes over all of them in batches of
//! that many records: natively through `normalize_sendgrid_events::transform_batch`, and as a
//! component through sluice's own plugin runtime: `LoadedPlugin::transform`, which reuses an
//! idle instance as the connector's calls do, and `transform_in_fresh_instance` (instantiate,
//! `init`, `transform` every call) to show what reuse saves. Every pass ends as the connector's
//! does: the rows turned into the host's Arrow record batch for Parquet (the native rows are
//! moved into the host's typed rows first, which copies no value). Prints one JSON line per batch
//! size with the fastest events/s of each, the wasm/native ratios (the target is in
//! bench/TARGETS.md) and the fixed cost of one call on an empty batch, warm and on a new
//! instance. The three passes take turns and each ratio is the median of the rounds', so a slow
//! spell of a shared machine does not land on one side only.
//!
//! ```text
//! scripts/build-plugins.sh /tmp/rsbench-plugins   # SLUICE_PLUGINS=normalize-sendgrid-events for just it
//! plugin-ratio --plugin /tmp/rsbench-plugins/normalize-sendgrid-events.wasm
//! ```

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use serde_json::json;
use sluice::plugin::rows::{RowBatch, RowRef};
use sluice::plugin::{CompileCache, EngineTuning, LoadedPlugin, PluginCall, PluginEngine, PluginLimits};
use sluice::sink::parquet::rows::{RowEncoder, TableRow};
use sluice::sink::parquet::schema::arrow_schema;
use sluice_bench::events::{EventGenerator, GeneratorSettings};
use sluice_bench::native::{host_rows, host_schema};

/// Events/s of the normalization plugin as WASM and as native code, and their ratio.
#[derive(Debug, Parser)]
struct Args {
    /// The component: `<dir>/normalize-sendgrid-events.wasm` after `scripts/build-plugins.sh <dir>`.
    #[arg(long)]
    plugin: PathBuf,
    /// Webhook bodies (plugin input records) per pass.
    #[arg(long, default_value_t = 2000)]
    bodies: usize,
    /// Events per body.
    #[arg(long, default_value_t = 100)]
    events_per_body: usize,
    /// Records per plugin call, comma-separated. sluice's connector hands a plugin up to the
    /// pipeline's `batch_records` per call: 500 by default and in `pipelines/sendgrid-events.toml`.
    #[arg(long, value_delimiter = ',', default_values_t = [500, 100])]
    batch_records: Vec<usize>,
    /// Timed rounds (a native pass, then the two wasm passes) per batch size; the median ratio is reported.
    #[arg(long, default_value_t = 9)]
    passes: usize,
    /// Malformed events per thousand.
    #[arg(long, default_value_t = 10)]
    malformed_per_mille: u64,
    /// Seeds the event generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Memory cap per call, in MiB (sluice's default is 256).
    #[arg(long, default_value_t = PluginLimits::default().memory_bytes >> 20)]
    memory_mb: u64,
    /// Wasmtime settings to measure, comma-separated, each against native in rounds of its own:
    /// default (what sluice runs), opt-none, opt-speed-and-size, bounds-checked, on-demand,
    /// no-epoch-checks, or `all`.
    #[arg(long, value_delimiter = ',', default_values_t = [String::from("default")])]
    engines: Vec<String>,
    /// The ETL's user-status records (JSON lines, `bench/peers/python/gen_user_status.py`): with
    /// `--validate-plugin` and `--explode-plugin`, the two ETL plugins are measured the same way
    /// on them, explode on the rows validate passes it, as the job's chain does.
    #[arg(long, requires_all = ["validate_plugin", "explode_plugin"])]
    etl_records: Option<PathBuf>,
    /// `<dir>/validate-user-status.wasm`.
    #[arg(long)]
    validate_plugin: Option<PathBuf>,
    /// `<dir>/explode-status-logs.wasm`.
    #[arg(long)]
    explode_plugin: Option<PathBuf>,
    /// Records per call for the ETL plugins (the user-status pipeline's `batch_records`).
    #[arg(long, default_value_t = 5000)]
    etl_batch_records: usize,
}

/// What one pass over every body produced, to check both builds agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Produced {
    rows: usize,
    failures: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.passes == 0 || args.batch_records.contains(&0) {
        bail!("--passes and every --batch-records must be at least 1");
    }
    let mut generator = EventGenerator::new(GeneratorSettings::for_run(args.seed, args.malformed_per_mille));
    let bodies: Vec<Vec<u8>> = (0..args.bodies).map(|_| generator.body(args.events_per_body)).collect();
    let native_records: Vec<sluice_plugin_sdk::RecordIn> =
        bodies.iter().map(|body| sluice_plugin_sdk::RecordIn::from_value(body.clone())).collect();
    let wasm_records: Vec<sluice::plugin::RecordIn> = bodies
        .into_iter()
        .map(|value| sluice::plugin::RecordIn { key: None, value, headers: Vec::new() })
        .collect();

    let tunings = engine_tunings(&args.engines)?;
    let limits = PluginLimits { memory_bytes: args.memory_mb << 20, ..PluginLimits::default() };
    for tuning in tunings {
        let engine = PluginEngine::with_tuning(limits.memory_bytes, tuning)?;
        let plugin = LoadedPlugin::from_file(&engine, &CompileCache::disabled(), &args.plugin)
            .with_context(|| format!("cannot load {}", args.plugin.display()))?;
        measure(&args, tuning, &plugin, &native_records, &wasm_records)?;
    }
    if let (Some(records), Some(validate), Some(explode)) =
        (&args.etl_records, &args.validate_plugin, &args.explode_plugin)
    {
        let engine = PluginEngine::new(limits.memory_bytes)?;
        measure_etl(&args, &engine, records, validate, explode)?;
    }
    Ok(())
}

/// The ETL's two plugins natively and as WebAssembly on the ETL's records, outputs taken into
/// the host's typed rows; one JSON line per plugin.
fn measure_etl(
    args: &Args,
    engine: &PluginEngine,
    records: &Path,
    validate_path: &Path,
    explode_path: &Path,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(records).with_context(|| format!("cannot read {}", records.display()))?;
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    let load = |path: &Path| {
        LoadedPlugin::from_file(engine, &CompileCache::disabled(), path)
            .with_context(|| format!("cannot load {}", path.display()))
    };
    let (validate, explode) = (load(validate_path)?, load(explode_path)?);
    let call = PluginCall { config: Vec::new(), limits: PluginLimits::default() };
    let validate_inputs: Vec<Vec<u8>> = lines.iter().map(|line| line.as_bytes().to_vec()).collect();
    // explode-status-logs reads validate-user-status's `status_logs` rows, rendered as JSON by
    // the host as a chained step gets them.
    let mut explode_inputs = Vec::new();
    for batch in wasm_inputs(&validate_inputs).chunks(args.etl_batch_records) {
        for rows in validate.transform(&call, batch)?.outputs {
            if rows.schema().name == "status_logs" {
                explode_inputs.extend((0..rows.len()).map(|row| rows.json(row)));
            }
        }
    }
    let validate_native = |batch: &[sluice_plugin_sdk::RecordIn]| {
        <validate_user_status::ValidateUserStatus as sluice_plugin_sdk::Plugin>::transform(batch, &())
    };
    let explode_native = |batch: &[sluice_plugin_sdk::RecordIn]| {
        <explode_status_logs::ExplodeStatusLogs as sluice_plugin_sdk::Plugin>::transform(batch, &())
    };
    let plugins: [EtlPlugin<'_>; 2] = [
        (&validate, &validate_native, &validate_inputs, validate_user_status::declared_outputs()),
        (&explode, &explode_native, &explode_inputs, explode_status_logs::declared_outputs()),
    ];
    for (plugin, native_transform, inputs, declared) in plugins {
        let schemas = declared.iter().map(host_schema).collect::<anyhow::Result<Vec<_>>>()?;
        let native_records: Vec<sluice_plugin_sdk::RecordIn> =
            inputs.iter().map(|value| sluice_plugin_sdk::RecordIn::from_value(value.clone())).collect();
        let wasm_records = wasm_inputs(inputs);
        let mut native_pass = || {
            let mut produced = Produced { rows: 0, failures: 0 };
            for batch in native_records.chunks(args.etl_batch_records) {
                let result = native_transform(batch);
                produced.failures += result.failures.len();
                for rows in result.outputs {
                    let schema = schemas
                        .iter()
                        .find(|schema| schema.name == rows.output)
                        .context("undeclared output")?;
                    produced.rows += black_box(host_rows(schema, rows)?).len();
                }
            }
            Ok(produced)
        };
        let mut wasm_pass = || {
            let mut produced = Produced { rows: 0, failures: 0 };
            for batch in wasm_records.chunks(args.etl_batch_records) {
                let result = black_box(plugin.transform(&call, batch)?);
                produced.failures += result.failures.len();
                produced.rows += result.outputs.iter().map(|rows| rows.len()).sum::<usize>();
            }
            Ok(produced)
        };
        let rounds = Rounds::run(args.passes, &mut [&mut native_pass, &mut wasm_pass])?;
        let [native, wasm] = [0, 1].map(|contender| rounds.fastest[contender]);
        if native.1 != wasm.1 {
            bail!("{}: the builds disagree: native gave {:?}, wasm {:?}", plugin.name(), native.1, wasm.1);
        }
        let ratios = rounds.ratios(1);
        let rate = |time: Duration| inputs.len() as f64 / time.as_secs_f64();
        println!(
            "{}",
            json!({
                "bench": "plugin-ratio",
                "plugin": plugin.name(),
                "engine": EngineTuning::Default.name(),
                "batch_records": args.etl_batch_records,
                "records": inputs.len(),
                "rows": native.1.rows,
                "failures": native.1.failures,
                "native_records_per_s": rate(native.0).round(),
                "wasm_records_per_s": rate(wasm.0).round(),
                "wasm_to_native": round3(median(&ratios)),
                "wasm_to_native_min": round3(ratios.first().copied().unwrap_or(0.0)),
                "wasm_to_native_max": round3(ratios.last().copied().unwrap_or(0.0)),
            })
        );
    }
    Ok(())
}

/// An ETL plugin as a component, the same plugin's `transform` natively, its inputs and its
/// declared outputs.
type EtlPlugin<'a> = (
    &'a LoadedPlugin,
    &'a dyn Fn(&[sluice_plugin_sdk::RecordIn]) -> sluice_plugin_sdk::BatchResult,
    &'a [Vec<u8>],
    Vec<sluice_plugin_sdk::OutputInfo>,
);

/// Record values as the host's input records.
fn wasm_inputs(values: &[Vec<u8>]) -> Vec<sluice::plugin::RecordIn> {
    values
        .iter()
        .map(|value| sluice::plugin::RecordIn { key: None, value: value.clone(), headers: Vec::new() })
        .collect()
}

/// The settings `--engines` names, in its order; `all` is every one.
fn engine_tunings(names: &[String]) -> anyhow::Result<Vec<EngineTuning>> {
    if names.iter().any(|name| name == "all") {
        return Ok(EngineTuning::ALL.to_vec());
    }
    names
        .iter()
        .map(|name| {
            EngineTuning::from_name(name).with_context(|| {
                let known: Vec<&str> = EngineTuning::ALL.iter().map(|tuning| tuning.name()).collect();
                format!("unknown engine setting `{name}`; use all or some of {}", known.join(", "))
            })
        })
        .collect()
}

/// Times native against `plugin` at each batch size and prints one JSON line per size.
fn measure(
    args: &Args,
    tuning: EngineTuning,
    plugin: &LoadedPlugin,
    native_records: &[sluice_plugin_sdk::RecordIn],
    wasm_records: &[sluice::plugin::RecordIn],
) -> anyhow::Result<()> {
    let limits = PluginLimits { memory_bytes: args.memory_mb << 20, ..PluginLimits::default() };
    let call = PluginCall { config: Vec::new(), limits };
    let declared = plugin.info().outputs.first().cloned().context("the plugin declares no output")?;
    let encoder = RowEncoder::new(Arc::new(arrow_schema(&declared)?), declared.clone())?;

    for &batch_records in &args.batch_records {
        let mut native_pass = || {
            let mut produced = Produced { rows: 0, failures: 0 };
            for batch in native_records.chunks(batch_records) {
                let result = normalize_sendgrid_events::transform_batch(batch);
                produced.failures += result.failures.len();
                for rows in result.outputs {
                    produced.rows += encode(&encoder, Arc::new(host_rows(&declared, rows)?))?;
                }
            }
            Ok(produced)
        };
        let wasm_pass = |fresh: bool| {
            let mut produced = Produced { rows: 0, failures: 0 };
            for batch in wasm_records.chunks(batch_records) {
                let result = if fresh {
                    plugin.transform_in_fresh_instance(&call, batch)?
                } else {
                    plugin.transform(&call, batch)?
                };
                produced.failures += result.failures.len();
                for rows in result.outputs {
                    produced.rows += encode(&encoder, rows)?;
                }
            }
            Ok(produced)
        };
        let mut reused_pass = || wasm_pass(false);
        let mut fresh_pass = || wasm_pass(true);
        // The same work without the Arrow step, to tell the plugin's share from the encoding's.
        let mut native_plugin_pass = || {
            let mut produced = Produced { rows: 0, failures: 0 };
            for batch in native_records.chunks(batch_records) {
                let result = black_box(normalize_sendgrid_events::transform_batch(batch));
                produced.failures += result.failures.len();
                produced.rows += result.outputs.iter().map(|rows| rows.inputs.len()).sum::<usize>();
            }
            Ok(produced)
        };
        let mut wasm_plugin_pass = || {
            let mut produced = Produced { rows: 0, failures: 0 };
            for batch in wasm_records.chunks(batch_records) {
                let result = black_box(plugin.transform(&call, batch)?);
                produced.failures += result.failures.len();
                produced.rows += result.outputs.iter().map(|rows| rows.len()).sum::<usize>();
            }
            Ok(produced)
        };
        let rounds = Rounds::run(
            args.passes,
            &mut [
                &mut native_pass,
                &mut reused_pass,
                &mut fresh_pass,
                &mut native_plugin_pass,
                &mut wasm_plugin_pass,
            ],
        )?;
        let [native, reused, fresh, native_plugin, wasm_plugin] =
            [0, 1, 2, 3, 4].map(|contender| rounds.fastest[contender]);
        if native.1 != reused.1 || native.1 != fresh.1 {
            bail!(
                "the builds disagree: native gave {:?}, wasm {:?} (reused instances) and {:?} (fresh)",
                native.1,
                reused.1,
                fresh.1
            );
        }
        let warm_call = fastest(args.passes, || Ok(plugin.transform(&call, &[])?))?.0;
        let new_instance = fastest(args.passes, || Ok(plugin.transform_in_fresh_instance(&call, &[])?))?.0;
        let events = wasm_records.len() * args.events_per_body;
        let rate = |time: Duration| events as f64 / time.as_secs_f64();
        let micros_per_event = |time: Duration| round3(time.as_secs_f64() * 1e6 / events as f64);
        let reused_ratios = rounds.ratios(1);
        let fresh_ratios = rounds.ratios(2);
        println!(
            "{}",
            json!({
                "bench": "plugin-ratio",
                "plugin": plugin.name(),
                "engine": tuning.name(),
                "batch_records": batch_records,
                "events_per_body": args.events_per_body,
                "events": events,
                "rows": reused.1.rows,
                "failures": reused.1.failures,
                "native_events_per_s": rate(native.0).round(),
                "wasm_events_per_s": rate(reused.0).round(),
                "wasm_to_native": round3(median(&reused_ratios)),
                "wasm_to_native_min": round3(reused_ratios.first().copied().unwrap_or(0.0)),
                "wasm_to_native_max": round3(reused_ratios.last().copied().unwrap_or(0.0)),
                "fastest_wasm_to_native": round3(rate(reused.0) / rate(native.0)),
                "fresh_wasm_events_per_s": rate(fresh.0).round(),
                "fresh_wasm_to_native": round3(median(&fresh_ratios)),
                "calls_per_pass": wasm_records.len().div_ceil(batch_records),
                "wasm_call_overhead_us": (warm_call.as_secs_f64() * 1e6).round(),
                "wasm_fresh_call_overhead_us": (new_instance.as_secs_f64() * 1e6).round(),
                // Where an event's time goes, from each contender's fastest pass: the plugin
                // alone natively, the plugin as WASM with its rows lifted into the host, and
                // the host's Arrow step (the native pass less the native plugin alone).
                "us_per_event_native_plugin": micros_per_event(native_plugin.0),
                "us_per_event_wasm_plugin": micros_per_event(wasm_plugin.0),
                "us_per_event_arrow": micros_per_event(native.0.saturating_sub(native_plugin.0)),
                "us_per_event_native": micros_per_event(native.0),
                "us_per_event_wasm": micros_per_event(reused.0),
            })
        );
    }
    Ok(())
}

/// Encodes `rows` into the Arrow record batch the connector's Parquet sink writes; returns the rows.
fn encode(encoder: &RowEncoder, rows: Arc<RowBatch>) -> anyhow::Result<usize> {
    let refs: Vec<RowRef> = (0..rows.len()).filter_map(|row| RowRef::new(rows.clone(), row)).collect();
    let records: Vec<TableRow<'_>> = refs
        .iter()
        .map(|row| TableRow { row, topic: "t", partition: 0, offset: 0, plugin_version: "p" })
        .collect();
    let encoded = black_box(encoder.encode(&records)?);
    Ok(encoded.batch.num_rows())
}

/// Timed passes of several contenders over the same batches, taken in turn round after round
/// so that a slow spell of a shared machine hits them all alike.
struct Rounds {
    /// Each contender's fastest pass and what it produced.
    fastest: Vec<(Duration, Produced)>,
    /// Each round's pass time per contender.
    times: Vec<Vec<Duration>>,
}

type Pass<'a> = &'a mut dyn FnMut() -> anyhow::Result<Produced>;

impl Rounds {
    /// Runs every contender once to warm up, then `passes` rounds of one pass each.
    ///
    /// # Errors
    /// The first error of a pass.
    fn run(passes: usize, contenders: &mut [Pass<'_>]) -> anyhow::Result<Self> {
        let mut fastest = Vec::with_capacity(contenders.len());
        for pass in contenders.iter_mut() {
            fastest.push((Duration::MAX, pass()?));
        }
        let mut times = Vec::with_capacity(passes);
        for _ in 0..passes {
            let mut round = Vec::with_capacity(contenders.len());
            for (pass, best) in contenders.iter_mut().zip(&mut fastest) {
                round.push(timed(pass, best)?);
            }
            times.push(round);
        }
        Ok(Rounds { fastest, times })
    }

    /// Contender `index`'s speed relative to the first contender in each round, sorted.
    fn ratios(&self, index: usize) -> Vec<f64> {
        let mut ratios: Vec<f64> =
            self.times.iter().map(|round| round[0].as_secs_f64() / round[index].as_secs_f64()).collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    }
}

/// Times one pass, keeping it in `best` when it is the fastest so far.
fn timed<T>(
    pass: &mut impl FnMut() -> anyhow::Result<T>,
    best: &mut (Duration, T),
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let produced = pass()?;
    let elapsed = started.elapsed();
    if elapsed < best.0 {
        *best = (elapsed, produced);
    }
    Ok(elapsed)
}

/// Runs `pass` once to warm up, then `passes` times; the shortest time and what it produced.
///
/// # Errors
/// The first error of a pass.
fn fastest<T>(passes: usize, mut pass: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let mut best = (Duration::MAX, pass()?);
    for _ in 0..passes {
        timed(&mut pass, &mut best)?;
    }
    Ok(best)
}

/// The middle value of sorted `values` (the mean of the two middle ones for an even count).
fn median(values: &[f64]) -> f64 {
    match values.len() {
        0 => 0.0,
        len if len % 2 == 1 => values[len / 2],
        len => (values[len / 2 - 1] + values[len / 2]) / 2.0,
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
