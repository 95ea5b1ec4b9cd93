//! `sluice plugin compile`: compile components into the host's cache ahead of a deploy.
//!
//! Compiling takes about a second per plugin on two cores, loading a cached one milliseconds.
//! Run this where the host runs (same configuration, same sluice build) before moving a new
//! component into the watched plugins directory or uploading it, and the swap is only a load.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use super::HostOptions;
use super::serve::plugin_runtime;
use crate::plugin::LoadedPlugin;

#[derive(Debug, Args)]
pub struct PluginCompileArgs {
    #[command(flatten)]
    host: HostOptions,
    /// The plugin components (`.wasm`) to compile.
    #[arg(required = true)]
    plugins: Vec<PathBuf>,
}

pub fn run(args: PluginCompileArgs) -> anyhow::Result<ExitCode> {
    let config = args.host.load()?;
    let (engine, cache) = plugin_runtime(&config)?;
    for path in &args.plugins {
        let started = Instant::now();
        let plugin = LoadedPlugin::from_file(&engine, &cache, path)
            .with_context(|| format!("cannot compile {}", path.display()))?;
        println!(
            "{} {} ({}) from {}: ready in {} ms, cached in {}",
            plugin.name(),
            plugin.version(),
            &plugin.content_hash()[..12],
            path.display(),
            started.elapsed().as_millis(),
            config.plugins.cache_dir.display(),
        );
    }
    Ok(ExitCode::SUCCESS)
}
