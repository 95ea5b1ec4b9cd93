//! The `sluice` command line: `serve`, `plugin new`, `plugin test`, `plugin info`, `plugin compile`,
//! `pipelines check`, `sweep`, `samples capture`, `athena-ddl`, `job run`.
//!
//! This is the binary's edge, so errors here are `anyhow` with context for the person typing.

mod athena_ddl;
mod job;
mod pipelines_check;
mod plugin_compile;
mod plugin_diff;
mod plugin_info;
mod plugin_new;
mod plugin_test;
mod samples_capture;
mod serve;
mod sweep;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::HostConfig;

/// Moves records between HTTP, Kafka, S3 and PostgreSQL through WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the pipelines: HTTP endpoints, consumers and sinks.
    Serve(serve::ServeArgs),
    /// Write plugin crates and work with plugin components without any service running.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Work with pipeline definitions.
    #[command(subcommand)]
    Pipelines(PipelinesCommand),
    /// Re-run a pipeline's dead letters through the plugins installed now.
    Sweep(sweep::SweepArgs),
    /// Turn records where they are into samples files `plugin test` and `plugin diff` read.
    #[command(subcommand)]
    Samples(SamplesCommand),
    /// Print the Athena `CREATE EXTERNAL TABLE` for a pipeline's parquet-s3 sinks.
    AthenaDdl(athena_ddl::AthenaDdlArgs),
    /// Run ETL jobs of `s3-job` pipelines.
    #[command(subcommand)]
    Job(JobCommand),
}

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// Load one S3 object now, in this process, with a progress bar; prints the job as JSON.
    Run(job::JobRunArgs),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Write a new plugin (Rust, Python or JavaScript) that builds and passes `plugin test` on
    /// its samples as it is.
    New(plugin_new::PluginNewArgs),
    /// Print the WIT contract plugins implement, or with --helper a language's helper module.
    Wit(plugin_new::PluginWitArgs),
    /// Run a plugin on a file of records and print what each output receives.
    Test(plugin_test::PluginTestArgs),
    /// Run two versions of a plugin on the same records and show what changes between them.
    Diff(plugin_diff::PluginDiffArgs),
    /// Print a plugin's name, version, WIT contract version and outputs with their schemas.
    Info(plugin_info::PluginInfoArgs),
    /// Compile plugins into the host's cache before a deploy, so the hot swap is only a load.
    Compile(plugin_compile::PluginCompileArgs),
}

#[derive(Debug, Subcommand)]
enum SamplesCommand {
    /// Write records of a pipeline's topic, its dead letters or an S3 object, byte for byte,
    /// into a file `plugin test --input` reads.
    Capture(samples_capture::SamplesCaptureArgs),
}

#[derive(Debug, Subcommand)]
enum PipelinesCommand {
    /// Load the plugins and check every pipeline file against them.
    Check(pipelines_check::PipelinesCheckArgs),
}

/// Options shared by commands that read the host configuration.
#[derive(Debug, Clone, Args)]
struct HostOptions {
    /// The host configuration file; every key has a local default.
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `plugins.dir`.
    #[arg(long, env = "SLUICE_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Overrides `pipelines.dir`.
    #[arg(long, env = "SLUICE_PIPELINES_DIR")]
    pipelines_dir: Option<PathBuf>,
}

impl HostOptions {
    fn load(&self) -> anyhow::Result<HostConfig> {
        let mut config = HostConfig::load(self.config.as_deref())?;
        if let Some(dir) = &self.plugins_dir {
            config.plugins.dir = dir.clone();
        }
        if let Some(dir) = &self.pipelines_dir {
            config.pipelines.dir = dir.clone();
        }
        Ok(config)
    }
}

impl Cli {
    /// Runs the chosen command; the exit code is non-zero when it returns an error.
    ///
    /// # Errors
    /// Whatever stopped the command, with context for the user.
    pub async fn run(self) -> anyhow::Result<std::process::ExitCode> {
        match self.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Plugin(PluginCommand::New(args)) => plugin_new::run(args),
            Command::Plugin(PluginCommand::Wit(args)) => Ok(plugin_new::print_wit(&args)),
            Command::Plugin(PluginCommand::Test(args)) => plugin_test::run(args),
            Command::Plugin(PluginCommand::Diff(args)) => plugin_diff::run(args),
            Command::Plugin(PluginCommand::Info(args)) => plugin_info::run(args),
            Command::Plugin(PluginCommand::Compile(args)) => plugin_compile::run(args),
            Command::Pipelines(PipelinesCommand::Check(args)) => pipelines_check::run(args),
            Command::Sweep(args) => sweep::run(args).await,
            Command::Samples(SamplesCommand::Capture(args)) => samples_capture::run(args).await,
            Command::AthenaDdl(args) => athena_ddl::run(args),
            Command::Job(JobCommand::Run(args)) => job::run(args).await,
        }
    }
}
