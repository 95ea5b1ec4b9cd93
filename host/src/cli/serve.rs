//! `sluice serve`: load plugins and pipelines, then serve until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use super::HostOptions;
use crate::config::{HostConfig, load_pipeline_dir};
use crate::http::{AppState, Endpoints, router};
use crate::plugin::{CompileCache, PluginEngine, PluginRegistry};

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    host: HostOptions,
    /// Overrides `server.listen`.
    #[arg(long, env = "SLUICE_LISTEN")]
    listen: Option<SocketAddr>,
}

/// Builds the registry from `plugins.dir`; files that fail to load are logged and skipped, so
/// one broken plugin does not stop the others (pipelines that need it fail validation).
///
/// # Errors
/// When the engine cannot start or the directory cannot be read.
pub fn load_plugins(config: &HostConfig) -> anyhow::Result<PluginRegistry> {
    let engine = PluginEngine::new(config.plugins.max_memory_mb << 20)?;
    let registry = PluginRegistry::new(engine, CompileCache::in_dir(&config.plugins.cache_dir));
    let failures = registry.load_dir(&config.plugins.dir).with_context(|| {
        format!("no plugins at {} (build them with scripts/build-plugins.sh)", config.plugins.dir.display())
    })?;
    for (path, error) in failures {
        tracing::error!(plugin = %path.display(), "plugin not loaded: {error}");
    }
    for (name, handle) in registry.list() {
        let plugin = handle.current();
        tracing::info!(plugin = %name, version = plugin.version(), hash = &plugin.content_hash()[..12], "plugin loaded");
    }
    Ok(registry)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = args.host.load()?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let registry = Arc::new(load_plugins(&config)?);
    let pipelines = match load_pipeline_dir(&config.pipelines.dir, &registry) {
        Ok(pipelines) => pipelines,
        Err(errors) => {
            for error in &errors {
                tracing::error!("{error}");
            }
            bail!("{} problem(s) in the pipelines at {}", errors.len(), config.pipelines.dir.display());
        }
    };
    for pipeline in &pipelines {
        tracing::info!(pipeline = %pipeline.name, source = pipeline.source.kind(), steps = pipeline.steps.len(), sinks = pipeline.sinks.len(), "pipeline loaded");
    }

    let endpoints = Endpoints::build(&pipelines, &registry, &config)?;
    let state = AppState::new(registry, pipelines, endpoints);
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    tracing::info!(address = %listener.local_addr()?, "serving");
    let drain = Duration::from_millis(config.server.shutdown_timeout_ms);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server stopped")?;
    tracing::info!(?drain, "stopped");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!("cannot listen for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
