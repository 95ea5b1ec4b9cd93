//! `sluice plugin info`: what a component declares, without running any pipeline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::plugin::{CompileCache, LoadedPlugin, PluginEngine, PluginLimits, WIT_PACKAGE};

#[derive(Debug, Args)]
pub struct PluginInfoArgs {
    /// The plugin component (`.wasm`).
    plugin: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: PluginInfoArgs) -> anyhow::Result<ExitCode> {
    let engine = PluginEngine::new(PluginLimits::default().memory_bytes)?;
    let plugin = LoadedPlugin::from_file(&engine, &CompileCache::disabled(), &args.plugin)
        .with_context(|| format!("cannot load {}", args.plugin.display()))?;
    let info = plugin.info();
    let wit = format!("{WIT_PACKAGE}@{}", info.contract);
    if args.json {
        let outputs: Vec<serde_json::Value> = info
            .outputs
            .iter()
            .map(|o| serde_json::json!({ "name": o.name, "columns": o.columns_json() }))
            .collect();
        let value = serde_json::json!({
            "name": info.name,
            "version": info.version,
            "wit": wit,
            "content_hash": plugin.content_hash(),
            "outputs": outputs,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("name:         {}", info.name);
    println!("version:      {}", info.version);
    println!("wit:          {wit}");
    println!("content hash: {}", plugin.content_hash());
    println!("outputs:");
    for output in &info.outputs {
        println!("  {}:", output.name);
        for column in &output.columns {
            let null = if column.nullable { ", nullable" } else { "" };
            println!("    {}: {}{null}", column.name, column.column_type);
        }
    }
    Ok(ExitCode::SUCCESS)
}
