//! `sluice serve`: load plugins and pipelines, then serve until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::HostOptions;
use crate::config::{HostConfig, Pipeline, load_pipeline_dir};
use crate::http::readiness::Dependencies;
use crate::http::{AdminApi, AppState, Endpoint, Endpoints, JobEndpoint, StartedJobs, router};
use crate::job::serve_job_pipelines;
use crate::object_store::ObjectStores;
use crate::pipeline::Connector;
use crate::pipeline::reload::{PluginSwapper, offer_shadow_files, watch_plugins};
use crate::plugin::{CompileCache, PluginEngine, PluginRegistry};
use crate::telemetry;

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
    let (engine, cache) = plugin_runtime(config)?;
    let registry = PluginRegistry::new(engine, cache);
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

/// The engine and compile cache `config` describes. `plugin compile` fills the cache through
/// this too: cached code only loads into an engine with the same settings.
///
/// # Errors
/// When the engine cannot start.
pub fn plugin_runtime(config: &HostConfig) -> anyhow::Result<(PluginEngine, CompileCache)> {
    let engine = PluginEngine::new(config.plugins.max_memory_mb.saturating_mul(1 << 20))?;
    Ok((engine, CompileCache::in_dir(&config.plugins.cache_dir)))
}

/// Loads and validates the pipelines directory.
///
/// # Errors
/// When any pipeline file is invalid; the message lists every problem, one per line.
pub fn load_pipelines(config: &HostConfig, registry: &PluginRegistry) -> anyhow::Result<Vec<Pipeline>> {
    load_pipeline_dir(&config.pipelines.dir, registry).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "the pipelines at {} have problems:\n{}",
            config.pipelines.dir.display(),
            lines.join("\n")
        )
    })
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = args.host.load()?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let registry = Arc::new(load_plugins(&config)?);
    let pipelines = load_pipelines(&config, &registry)?;
    for pipeline in &pipelines {
        tracing::info!(pipeline = %pipeline.name, source = pipeline.source.kind(), steps = pipeline.steps.len(), sinks = pipeline.sinks.len(), "pipeline loaded");
    }

    let stores = ObjectStores::new(config.s3.clone());
    let (stop, stopping) = watch::channel(false);
    let mut connectors = JoinSet::new();
    for pipeline in pipelines.iter().filter(|p| p.runs_connector()) {
        // The group spreads the partitions over this host's members and any other host's.
        let members = Connector::group_members(pipeline, &registry, &config, &stores)
            .await
            .with_context(|| format!("cannot start the connector of pipeline `{}`", pipeline.name))?;
        for connector in members {
            let name = pipeline.name.clone();
            let stopping = stopping.clone();
            connectors.spawn(async move { (name, connector.run(stopping).await) });
        }
    }

    // A job cut short by the stop is handed out again by the job topic; its rows were never
    // moved into the tables.
    let jobs = serve_job_pipelines(&pipelines, &registry, &config, &stores, &stopping)
        .await
        .context("cannot start the job pipelines")?;
    let mut started_jobs: StartedJobs = Vec::new();
    let mut job_store = None;
    if let Some(jobs) = jobs {
        for served in jobs.pipelines {
            let endpoint = JobEndpoint { pipeline: served.pipeline, queue: served.queue };
            started_jobs.push((served.path, Arc::new(Endpoint::Job(endpoint))));
        }
        job_store = Some(jobs.store);
    }
    let endpoints = Endpoints::build(&pipelines, &registry, &config, &started_jobs)?;
    let s3 = if Dependencies::needs_s3(&pipelines) { Some(stores.s3().await.clone()) } else { None };
    let dependencies = Dependencies::of(&pipelines, &config, s3);
    let metrics = telemetry::install().context("cannot start the metrics recorder")?;
    let mut state = AppState::new(registry.clone(), pipelines, endpoints)
        .with_dependencies(dependencies)
        .with_metrics(metrics);
    if let Some(store) = job_store {
        state = state.with_job_store(store);
    }
    let swapper = PluginSwapper::new(registry, state.pipelines.clone(), config.plugins.dir.clone())
        .with_canary_defaults(config.plugins.canary);
    // Candidates left in the plugins directory shadow or serve as canaries again, checked against
    // the pipelines now.
    let offering = swapper.clone();
    tokio::task::spawn_blocking(move || offer_shadow_files(&offering))
        .await
        .context("cannot offer the candidates of the plugins directory")?;
    // Kept alive until the host stops; dropping it ends the watch.
    let _plugin_watch = if config.plugins.watch {
        let debounce = Duration::from_millis(config.plugins.watch_debounce_ms);
        Some(watch_plugins(swapper.clone(), debounce).context("cannot watch the plugins directory")?)
    } else {
        None
    };
    state = state.with_admin(AdminApi::new(&config, swapper));
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    tracing::info!(address = %listener.local_addr()?, "serving");
    let drain = Duration::from_millis(config.server.shutdown_timeout_ms);

    // A connector that stops on its own stops the host, so a supervisor restarts it instead of
    // the pipeline going quiet unnoticed.
    let (failed, mut connector_failed) = watch::channel(false);
    let supervisor = tokio::spawn(async move {
        let mut clean = true;
        while let Some(joined) = connectors.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(error))) => {
                    tracing::error!(pipeline = %name, "connector stopped: {error}");
                    clean = false;
                    let _ = failed.send(true);
                }
                Err(panic) => {
                    tracing::error!("connector task failed: {panic}");
                    clean = false;
                    let _ = failed.send(true);
                }
            }
        }
        clean
    });
    let shutdown = async move {
        tokio::select! {
            () = shutdown_signal() => {},
            // Only a failure stops the host: with no connectors the supervisor ends at once
            // and drops its sender, which must not look like one.
            Ok(_) = connector_failed.wait_for(|failed| *failed) => {},
        }
        let _ = stop.send(true);
    };
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("the HTTP server stopped")?;
    // Connectors store their open windows and commit before the host exits.
    let clean = match tokio::time::timeout(drain, supervisor).await {
        Ok(Ok(clean)) => clean,
        Ok(Err(_)) => false,
        Err(_) => {
            tracing::warn!(?drain, "connectors did not finish within the shutdown timeout");
            false
        }
    };
    tracing::info!("stopped");
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
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
