//! `sluice sweep`: re-run a pipeline's dead letters through the plugins installed now.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::HostOptions;
use super::serve::{load_pipelines, load_plugins};
use crate::config::{HostConfig, Pipeline};
use crate::pipeline::StoreResolver;
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
    let stores = StoreResolver::new(config.s3.clone());
    let sweep = Sweep::new(&pipeline, &registry, &config, &stores).await?;
    let objects = sweep.pending_objects().await?;
    let progress = ProgressBar::new(objects.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} dead-letter objects {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut total = SweepReport::default();
    for key in &objects {
        let report =
            sweep.sweep_object(key, args.dry_run).await.with_context(|| format!("sweeping {key}"))?;
        total.add(&report);
        progress.set_message(format!("{} passed, {} still failing", total.passed, total.still_failing));
        progress.inc(1);
    }
    progress.finish_and_clear();
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
