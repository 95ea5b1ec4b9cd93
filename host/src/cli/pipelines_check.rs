//! `sluice pipelines check`: validate pipeline files against the plugins they name.

use std::process::ExitCode;

use clap::Args;

use super::HostOptions;
use super::serve::load_plugins;
use crate::config::load_pipeline_dir;

#[derive(Debug, Args)]
pub struct PipelinesCheckArgs {
    #[command(flatten)]
    host: HostOptions,
}

pub fn run(args: PipelinesCheckArgs) -> anyhow::Result<ExitCode> {
    let config = args.host.load()?;
    let registry = load_plugins(&config)?;
    match load_pipeline_dir(&config.pipelines.dir, &registry) {
        Ok(pipelines) => {
            for pipeline in &pipelines {
                println!(
                    "ok  {} ({}, {} steps, {} sinks)",
                    pipeline.name,
                    pipeline.file.display(),
                    pipeline.steps.len(),
                    pipeline.sinks.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("error: {error}");
            }
            eprintln!("{} problem(s) in {}", errors.len(), config.pipelines.dir.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
