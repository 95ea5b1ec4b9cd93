//! `sluice sweep`: re-run a pipeline's dead letters through the plugins installed now: a
//! streaming pipeline's into its Parquet tables, an `s3-job` pipeline's into its PostgreSQL
//! tables.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::HostOptions;
use super::serve::{load_pipelines, load_plugins};
use crate::config::{HostConfig, Pipeline};
use crate::job::{JobServices, is_job_pipeline};
use crate::object_store::ObjectStores;
use crate::pipeline::sweep::{Sweep, SweepReport};
use crate::plugin::PluginRegistry;

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    host: HostOptions,
    /// The pipeline whose dead letters to re-run.
    #[arg(long)]
    pipeline: String,
    /// Report what would pass without writing, moving or deleting anything.
    #[arg(long)]
    dry_run: bool,
}

/// Loads the plugins and the named pipeline.
pub(super) fn load_pipeline(config: &HostConfig, name: &str) -> anyhow::Result<(PluginRegistry, Pipeline)> {
    let registry = load_plugins(config)?;
    let pipelines = load_pipelines(config, &registry)?;
    let names: Vec<String> = pipelines.iter().map(|p| p.name.clone()).collect();
    let pipeline = pipelines.into_iter().find(|p| p.name == name).with_context(|| {
        format!(
            "no pipeline named `{name}` in {} (there are: {})",
            config.pipelines.dir.display(),
            names.join(", ")
        )
    })?;
    Ok((registry, pipeline))
}

pub async fn run(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let config = args.host.load()?;
    let (registry, pipeline) = load_pipeline(&config, &args.pipeline)?;
    let total = if is_job_pipeline(&pipeline) {
        sweep_jobs(&config, &registry, &pipeline, args.dry_run).await?
    } else {
        sweep_tables(&config, &registry, &pipeline, args.dry_run).await?
    };
    let verb = if args.dry_run { "would pass" } else { "passed" };
    println!(
        "{}: {} dead-letter objects, {} records: {} {verb} ({} rows), {} still failing; {} objects {}",
        pipeline.name,
        total.objects,
        total.letters,
        total.passed,
        total.rows,
        total.still_failing,
        total.objects_swept,
        if args.dry_run { "would move to swept/" } else { "moved to swept/" },
    );
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(objects: usize) -> ProgressBar {
    let progress = ProgressBar::new(objects as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} dead-letter objects {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress
}

fn advance(progress: &ProgressBar, total: &mut SweepReport, report: &SweepReport) {
    total.add(report);
    progress.set_message(format!("{} passed, {} still failing", total.passed, total.still_failing));
    progress.inc(1);
}

/// A streaming pipeline's dead letters, into its Parquet tables.
async fn sweep_tables(
    config: &HostConfig,
    registry: &PluginRegistry,
    pipeline: &Pipeline,
    dry_run: bool,
) -> anyhow::Result<SweepReport> {
    let stores = ObjectStores::new(config.s3.clone());
    let sweep = Sweep::new(pipeline, registry, config, &stores).await?;
    let objects = sweep.pending_objects().await?;
    let progress = progress_bar(objects.len());
    let mut total = SweepReport::default();
    for key in &objects {
        let report = sweep.sweep_object(key, dry_run).await.with_context(|| format!("sweeping {key}"))?;
        advance(&progress, &mut total, &report);
    }
    progress.finish_and_clear();
    Ok(total)
}

/// An `s3-job` pipeline's dead letters, into its PostgreSQL tables: each object as a job of
/// its own, loaded in one transaction.
async fn sweep_jobs(
    config: &HostConfig,
    registry: &PluginRegistry,
    pipeline: &Pipeline,
    dry_run: bool,
) -> anyhow::Result<SweepReport> {
    let stores = ObjectStores::new(config.s3.clone());
    let services = JobServices::start(config, &stores).await?;
    let prepared = services.prepare(pipeline, registry, config).await?;
    let objects = prepared.pending_dead_letter_objects().await?;
    let progress = progress_bar(objects.len());
    let mut total = SweepReport::default();
    for object in &objects {
        let report = prepared
            .sweep_dead_letter_object(object, dry_run)
            .await
            .with_context(|| format!("sweeping {}", object.key))?;
        advance(&progress, &mut total, &report);
    }
    progress.finish_and_clear();
    Ok(total)
}
