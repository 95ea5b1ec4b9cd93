//! Swapping plugin versions while the host serves: from the plugins directory (a watcher) and
//! from admin uploads, both through [`PluginSwapper::offer`].
//!
//! A component is compiled and checked before anything changes: contract version and `info`
//! (when it loads), its declared name, `init` with the config of every pipeline step that calls
//! it, the outputs those pipelines read, and the schemas their table and PostgreSQL sinks were
//! built with. Only then is it installed, in one atomic swap; calls already running finish on
//! the old version. A refused component changes nothing but the plugin's last error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::{Pipeline, SinkKind, StepInput};
use crate::plugin::canary::{Canary, CanarySettings, CanaryView};
use crate::plugin::schema::OutputSchema;
use crate::plugin::{
    CANARY_FILE_SUFFIX, LoadedPlugin, PluginError, PluginLimits, PluginRegistry, ROLLED_BACK_FILE_SUFFIX,
    Rejection, SHADOW_FILE_SUFFIX, ShadowCounts, canary_file_plugin, content_hash, shadow_file_plugin,
};
use crate::telemetry;

/// What became of an offered component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// It is the current version now; `previous` is the version it replaced, if any.
    Swapped { name: String, version: String, content_hash: String, previous: Option<String> },
    /// The same bytes are already the current version.
    Unchanged { name: String, version: String, content_hash: String },
}

/// What became of an offered candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShadowOffered {
    /// It shadows the current version now; `replaced` is the candidate it ended, if any.
    Started { name: String, version: String, content_hash: String, current: String, replaced: Option<String> },
    /// The same bytes already shadow it.
    Unchanged { name: String, version: String, content_hash: String },
}

/// A candidate made the current version.
#[derive(Debug, Clone, PartialEq)]
pub struct Promoted {
    pub name: String,
    pub version: String,
    pub content_hash: String,
    pub previous: String,
    /// What it did while it shadowed.
    pub counts: ShadowCounts,
    /// Its component, to keep in the plugins directory.
    pub bytes: Arc<[u8]>,
}

/// Checks and installs plugin versions against the pipelines being served.
#[derive(Clone)]
pub struct PluginSwapper {
    registry: Arc<PluginRegistry>,
    pipelines: Arc<ArcSwap<Vec<Pipeline>>>,
    dir: PathBuf,
    /// Held while a candidate is installed, promoted or discarded, so the watcher and the
    /// admin API cannot interleave those steps.
    shadows: Arc<Mutex<()>>,
    /// The settings of a canary that names none of its own.
    canary_defaults: CanarySettings,
}

/// A canary started from an offered candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryStarted {
    pub name: String,
    pub version: String,
    pub content_hash: String,
    pub current: String,
    pub settings: CanarySettings,
    /// The candidate of the rollout it replaced, if one was serving.
    pub replaced: Option<String>,
}

/// A canary's candidate made the current version.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryPromoted {
    pub name: String,
    pub version: String,
    pub content_hash: String,
    pub previous: String,
    pub view: CanaryView,
    pub bytes: Arc<[u8]>,
}

impl PluginSwapper {
    /// `pipelines` is the served list, so a pipeline reload changes what new versions must fit.
    pub fn new(registry: Arc<PluginRegistry>, pipelines: Arc<ArcSwap<Vec<Pipeline>>>, dir: PathBuf) -> Self {
        PluginSwapper {
            registry,
            pipelines,
            dir,
            shadows: Arc::new(Mutex::new(())),
            canary_defaults: CanarySettings::default(),
        }
    }

    /// The same swapper, starting canaries without settings of their own with `settings`.
    #[must_use]
    pub fn with_canary_defaults(mut self, settings: CanarySettings) -> Self {
        self.canary_defaults = settings;
        self
    }

    pub fn canary_defaults(&self) -> CanarySettings {
        self.canary_defaults
    }

    /// Compiles and checks `bytes` as a swap would and makes it serve a share of `name`'s
    /// traffic as a canary judged by `settings`; its file in the plugins directory is
    /// `<name>.canary.wasm` (renamed on rollback). CPU-heavy, so call it from a blocking thread.
    ///
    /// # Errors
    /// [`PluginError::NotLoaded`] when no version of `name` runs, [`PluginError::Incompatible`]
    /// for settings out of range, or the [`PluginError`] that refused it (recorded as a
    /// [`Rejection`]); a rollout serving before stays.
    pub fn offer_canary(
        &self,
        name: &str,
        origin: &str,
        bytes: &[u8],
        settings: CanarySettings,
    ) -> Result<CanaryStarted, PluginError> {
        let _one_change = self.shadows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let handle = self.registry.get(name).ok_or_else(|| PluginError::NotLoaded(name.to_owned()))?;
        if let Some(problem) = settings.problem() {
            return Err(PluginError::Incompatible {
                origin: origin.to_owned(),
                plugin: name.to_owned(),
                problems: format!("canary settings: {problem}"),
            });
        }
        let hash = content_hash(bytes);
        let candidate = match self.check(name, origin, bytes) {
            Ok(candidate) => candidate,
            Err(error) => {
                metrics::counter!(telemetry::PLUGIN_RELOADS, "plugin" => name.to_owned(), "outcome" => "rejected")
                    .increment(1);
                tracing::error!(plugin = name, origin, "canary candidate refused, nothing changes: {error}");
                let rejection = Rejection {
                    origin: origin.to_owned(),
                    content_hash: hash,
                    error: error.to_string(),
                    at: SystemTime::now(),
                };
                self.registry.record_rejection(name, rejection);
                return Err(error);
            }
        };
        let version = candidate.version().to_owned();
        let current = handle.current().version().to_owned();
        let file = self.dir.join(format!("{name}{CANARY_FILE_SUFFIX}"));
        let canary = Canary::new(candidate, Arc::from(bytes), settings, Some(file));
        let replaced = handle
            .start_canary(canary)
            .filter(|ended| ended.is_serving())
            .map(|ended| ended.candidate().version().to_owned());
        metrics::counter!(telemetry::PLUGIN_RELOADS, "plugin" => name.to_owned(), "outcome" => "canary")
            .increment(1);
        tracing::info!(
            plugin = name, %version, %current, share_percent = settings.share_percent, replaced = ?replaced,
            hash = &hash[..12], origin, "canary serving"
        );
        Ok(CanaryStarted { name: name.to_owned(), version, content_hash: hash, current, settings, replaced })
    }

    /// Ends the rollout of `name` (serving or already ended); its candidate's version and what
    /// it did, if there was one.
    pub fn discard_canary(&self, name: &str) -> Option<(String, CanaryView)> {
        let _one_change = self.shadows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let ended = self.registry.get(name)?.end_canary()?;
        let version = ended.candidate().version().to_owned();
        tracing::info!(plugin = name, %version, "canary discarded");
        Some((version, ended.view()))
    }

    /// Ends a canary of `name` whose file was removed, if it still serves; an ended one stays
    /// readable (a rollback renames the file itself).
    fn discard_serving_canary(&self, name: &str) {
        if self.registry.get(name).and_then(|handle| handle.serving_canary()).is_some() {
            self.discard_canary(name);
        }
    }

    /// Makes the serving canary's candidate the current version of `name`, after checking it
    /// again against the pipelines served now; `None` when no canary serves.
    ///
    /// # Errors
    /// [`PluginError::Incompatible`] when the candidate no longer fits; it keeps serving.
    pub fn promote_canary(&self, name: &str) -> Result<Option<CanaryPromoted>, PluginError> {
        let _one_change = self.shadows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(handle) = self.registry.get(name) else { return Ok(None) };
        let Some(canary) = handle.serving_canary() else { return Ok(None) };
        let current = handle.current();
        let candidate = canary.candidate();
        let problems = fit_problems(candidate, Some(&*current), &self.pipelines.load());
        if !problems.is_empty() {
            return Err(PluginError::Incompatible {
                origin: format!("canary `{name}` {}", candidate.version()),
                plugin: name.to_owned(),
                problems: problems.join("; "),
            });
        }
        let Some(promoted) = handle.promote_canary(candidate.content_hash()) else { return Ok(None) };
        self.registry.clear_rejection(name);
        metrics::counter!(telemetry::PLUGIN_RELOADS, "plugin" => name.to_owned(), "outcome" => "swapped")
            .increment(1);
        let version = candidate.version().to_owned();
        tracing::info!(plugin = name, %version, previous = current.version(), "canary promoted");
        Ok(Some(CanaryPromoted {
            name: name.to_owned(),
            version,
            content_hash: candidate.content_hash().to_owned(),
            previous: current.version().to_owned(),
            view: promoted.view(),
            bytes: Arc::from(promoted.bytes()),
        }))
    }

    /// The plugins directory, where accepted uploads are kept for the next start.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Compiles, checks and installs `bytes` as plugin `name`; CPU-heavy, so call it from a
    /// blocking thread.
    ///
    /// # Errors
    /// The [`PluginError`] that refused it; the current version keeps running and the error
    /// is recorded as a [`Rejection`].
    pub fn offer(&self, name: &str, origin: &str, bytes: &[u8]) -> Result<Offered, PluginError> {
        let hash = content_hash(bytes);
        if let Some(current) = self.registry.get(name).map(|handle| handle.current())
            && current.content_hash() == hash
        {
            metrics::counter!(telemetry::PLUGIN_RELOADS, "plugin" => name.to_owned(), "outcome" => "unchanged")
                .increment(1);
            return Ok(Offered::Unchanged {
                name: name.to_owned(),
                version: current.version().to_owned(),
                content_hash: hash,
            });
        }
        match self.check(name, origin, bytes) {
            Ok(candidate) => {
                let version = candidate.version().to_owned();
                let previous = self.registry.get(name).map(|handle| handle.current().version().to_owned());
                self.registry.install(candidate);
                metrics::counter!(telemetry::PLUGIN_RELOADS, "plugin" => name.to_owned(), "outcome" => "swapped")
                    .increment(1);
                tracing::info!(plugin = name, %version, previous = ?previous, hash = &hash[..12], origin, "plugin swapped");
                Ok(Offered::Swapped { name: name.to_owned(), version, content_hash: hash, previous })
            }
            Err(error) => {
                metrics::counter!(telemetry::PLUGIN_RELOADS, "plugin" => name.to_owned(), "outcome" => "rejected")
                    .increment(1);
                tracing::error!(
                    plugin = name,
                    origin,
                    "plugin version refused, the running one stays: {error}"
                );
                let rejection = Rejection {
                    origin: origin.to_owned(),
                    content_hash: hash,
                    error: error.to_string(),
                    at: SystemTime::now(),
                };
                self.registry.record_rejection(name, rejection);
                Err(error)
            }
        }
    }

    /// Compiles and checks `bytes` as a swap would, and makes it shadow the current version of
    /// `name`; CPU-heavy, so call it from a blocking thread.
    ///
    /// # Errors
    /// [`PluginError::NotLoaded`] when no version of `name` runs, or the [`PluginError`] that
    /// refused it (recorded as a [`Rejection`]); the shadow running before, if any, stays.
    pub fn offer_shadow(&self, name: &str, origin: &str, bytes: &[u8]) -> Result<ShadowOffered, PluginError> {
        let _one_change = self.shadows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let hash = content_hash(bytes);
        let handle = self.registry.get(name).ok_or_else(|| PluginError::NotLoaded(name.to_owned()))?;
        if let Some(shadow) = handle.shadow()
            && shadow.candidate().content_hash() == hash
        {
            return Ok(ShadowOffered::Unchanged {
                name: name.to_owned(),
                version: shadow.candidate().version().to_owned(),
                content_hash: hash,
            });
        }
        match self.check(name, origin, bytes) {
            Ok(candidate) => {
                let version = candidate.version().to_owned();
                let current = handle.current().version().to_owned();
                let replaced = handle
                    .start_shadow(candidate, Arc::from(bytes))
                    .map(|ended| ended.candidate().version().to_owned());
                metrics::counter!(telemetry::PLUGIN_RELOADS, "plugin" => name.to_owned(), "outcome" => "shadowing")
                    .increment(1);
                tracing::info!(plugin = name, %version, %current, replaced = ?replaced, hash = &hash[..12], origin, "candidate shadowing");
                Ok(ShadowOffered::Started {
                    name: name.to_owned(),
                    version,
                    content_hash: hash,
                    current,
                    replaced,
                })
            }
            Err(error) => {
                metrics::counter!(telemetry::PLUGIN_RELOADS, "plugin" => name.to_owned(), "outcome" => "rejected")
                    .increment(1);
                tracing::error!(plugin = name, origin, "candidate refused, nothing shadows with it: {error}");
                let rejection = Rejection {
                    origin: origin.to_owned(),
                    content_hash: hash,
                    error: error.to_string(),
                    at: SystemTime::now(),
                };
                self.registry.record_rejection(name, rejection);
                Err(error)
            }
        }
    }

    /// Ends the shadow of `name`; the candidate's version and what it did, if one ran.
    pub fn discard_shadow(&self, name: &str) -> Option<(String, ShadowCounts)> {
        let _one_change = self.shadows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let ended = self.registry.get(name)?.end_shadow()?;
        let version = ended.candidate().version().to_owned();
        tracing::info!(plugin = name, %version, "candidate discarded");
        Some((version, ended.counts()))
    }

    /// Makes the candidate shadowing `name` its current version, after checking it again
    /// against the pipelines served now; `None` when no candidate shadows it.
    ///
    /// # Errors
    /// [`PluginError::Incompatible`] when the candidate no longer fits; it keeps shadowing.
    pub fn promote_shadow(&self, name: &str) -> Result<Option<Promoted>, PluginError> {
        let _one_change = self.shadows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(handle) = self.registry.get(name) else { return Ok(None) };
        let Some(shadow) = handle.shadow() else { return Ok(None) };
        let current = handle.current();
        let candidate = shadow.candidate();
        let problems = fit_problems(candidate, Some(&*current), &self.pipelines.load());
        if !problems.is_empty() {
            return Err(PluginError::Incompatible {
                origin: format!("candidate `{name}` {}", candidate.version()),
                plugin: name.to_owned(),
                problems: problems.join("; "),
            });
        }
        let Some(promoted) = handle.promote_shadow(candidate.content_hash()) else { return Ok(None) };
        self.registry.clear_rejection(name);
        metrics::counter!(telemetry::PLUGIN_RELOADS, "plugin" => name.to_owned(), "outcome" => "swapped")
            .increment(1);
        let version = candidate.version().to_owned();
        tracing::info!(plugin = name, %version, previous = current.version(), "candidate promoted");
        Ok(Some(Promoted {
            name: name.to_owned(),
            version,
            content_hash: candidate.content_hash().to_owned(),
            previous: current.version().to_owned(),
            counts: promoted.counts(),
            bytes: Arc::from(promoted.bytes()),
        }))
    }

    fn check(&self, name: &str, origin: &str, bytes: &[u8]) -> Result<LoadedPlugin, PluginError> {
        let candidate = self.registry.compile(origin, bytes)?;
        if candidate.name() != name {
            return Err(PluginError::WrongName {
                origin: origin.to_owned(),
                declared: candidate.name().to_owned(),
                expected: name.to_owned(),
            });
        }
        let current = self.registry.get(name).map(|handle| handle.current());
        let problems = fit_problems(&candidate, current.as_deref(), &self.pipelines.load());
        if problems.is_empty() {
            Ok(candidate)
        } else {
            Err(PluginError::Incompatible {
                origin: origin.to_owned(),
                plugin: name.to_owned(),
                problems: problems.join("; "),
            })
        }
    }
}

/// Why `candidate` cannot replace `current` under `pipelines`, one entry per problem.
fn fit_problems(
    candidate: &LoadedPlugin,
    current: Option<&LoadedPlugin>,
    pipelines: &[Pipeline],
) -> Vec<String> {
    let name = candidate.name();
    let mut problems = Vec::new();
    for pipeline in pipelines {
        for step in pipeline.steps.iter().filter(|step| step.plugin == name) {
            if let Err(error) = candidate.check_config(&step.call(PluginLimits::default())) {
                problems.push(format!("pipeline `{}`: {error}", pipeline.name));
            }
        }
        let step_inputs = pipeline.steps.iter().filter_map(|step| match &step.input {
            StepInput::Output { plugin, output } if plugin == name => Some((output.as_str(), None)),
            _ => None,
        });
        let sink_inputs = pipeline.sinks.iter().filter_map(|sink| {
            let (plugin, output) = sink.from.split_once('.')?;
            (plugin == name).then_some((output, Some(&sink.kind)))
        });
        let mut seen = BTreeSet::new();
        for (output, sink) in step_inputs.chain(sink_inputs) {
            if !candidate.has_output(output) {
                if seen.insert(output) {
                    problems.push(format!(
                        "pipeline `{}` reads output `{output}`, which it does not declare",
                        pipeline.name
                    ));
                }
                continue;
            }
            // Some sinks fixed their columns when they started.
            let fixed_columns = sink.is_some_and(SinkKind::fixes_columns);
            if fixed_columns && schema_of(candidate, output) != current.and_then(|c| schema_of(c, output)) {
                problems.push(format!(
                    "pipeline `{}`: the schema of output `{output}` differs from the running version's, \
                     and its sink's columns are fixed until the host restarts",
                    pipeline.name
                ));
            }
        }
    }
    problems
}

fn schema_of<'a>(plugin: &'a LoadedPlugin, output: &str) -> Option<&'a OutputSchema> {
    plugin.info().output(output).map(|schema| &**schema)
}

/// Keeps the directory watch alive; dropping it stops watching.
pub struct PluginWatch {
    _watcher: RecommendedWatcher,
}

/// Watches `swapper`'s directory (not its subdirectories) and offers every new or changed
/// `<name>.wasm` once writes to it have been quiet for `debounce`. A removed file changes
/// nothing: its version keeps running until the host restarts. A `<name>.shadow.wasm` is
/// offered as a candidate, and removing it discards the candidate.
///
/// # Errors
/// When the directory cannot be watched.
pub fn watch_plugins(swapper: PluginSwapper, debounce: Duration) -> Result<PluginWatch, notify::Error> {
    let (changed, mut changes) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        Ok(event)
            if matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)) =>
        {
            for path in event.paths.into_iter().filter(|path| is_component_file(path)) {
                let _ = changed.send(path);
            }
        }
        Ok(_) => {}
        Err(error) => tracing::warn!("plugin directory watch: {error}"),
    })?;
    watcher.watch(swapper.dir(), RecursiveMode::NonRecursive)?;
    tracing::info!(dir = %swapper.dir().display(), "watching for plugin changes");
    tokio::spawn(async move {
        while let Some(first) = changes.recv().await {
            let mut pending = BTreeSet::from([first]);
            while let Ok(Some(path)) = tokio::time::timeout(debounce, changes.recv()).await {
                pending.insert(path);
            }
            for path in pending {
                let swapper = swapper.clone();
                let offered = tokio::task::spawn_blocking(move || offer_file(&swapper, &path)).await;
                if let Err(error) = offered {
                    tracing::error!("plugin reload task failed: {error}");
                }
            }
        }
    });
    Ok(PluginWatch { _watcher: watcher })
}

/// `<name>.wasm`, not a hidden temporary file of a write-then-rename.
fn is_component_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    path.extension().is_some_and(|ext| ext == "wasm")
        && !name.starts_with('.')
        && !name.ends_with(ROLLED_BACK_FILE_SUFFIX)
}

fn offer_file(swapper: &PluginSwapper, path: &Path) {
    if let Some(name) = canary_file_plugin(path) {
        offer_canary_file(swapper, name, path);
        return;
    }
    if let Some(name) = shadow_file_plugin(path) {
        offer_shadow_file(swapper, name, path);
        return;
    }
    let Some(name) = path.file_stem().and_then(|s| s.to_str()) else { return };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(plugin = name, "plugin file removed; the loaded version runs until restart");
            return;
        }
        Err(error) => {
            tracing::error!(plugin = name, path = %path.display(), "cannot read the changed plugin: {error}");
            return;
        }
    };
    // The outcome is logged, counted and kept for the admin API by `offer`.
    let _ = swapper.offer(name, &path.display().to_string(), &bytes);
}

/// Offers `path` as the candidate of plugin `name`, or discards the candidate when the file is
/// gone.
fn offer_shadow_file(swapper: &PluginSwapper, name: &str, path: &Path) {
    match std::fs::read(path) {
        // The outcome is logged, counted and kept for the admin API by `offer_shadow`.
        Ok(bytes) => {
            let _ = swapper.offer_shadow(name, &path.display().to_string(), &bytes);
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            swapper.discard_shadow(name);
        }
        Err(error) => {
            tracing::error!(plugin = name, path = %path.display(), "cannot read the candidate: {error}");
        }
    }
}

/// Starts `path` as the canary of plugin `name` with the host's canary settings, or discards a
/// serving canary when the file is gone.
fn offer_canary_file(swapper: &PluginSwapper, name: &str, path: &Path) {
    match std::fs::read(path) {
        Ok(bytes) => {
            let serving = swapper.registry.get(name).and_then(|handle| handle.serving_canary());
            if serving.is_some_and(|canary| canary.candidate().content_hash() == content_hash(&bytes)) {
                return;
            }
            // The outcome is logged, counted and kept for the admin API by `offer_canary`.
            let _ = swapper.offer_canary(name, &path.display().to_string(), &bytes, swapper.canary_defaults);
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => swapper.discard_serving_canary(name),
        Err(error) => {
            tracing::error!(plugin = name, path = %path.display(), "cannot read the canary candidate: {error}");
        }
    }
}

/// Offers every `<name>.shadow.wasm` of the plugins directory as a candidate: at start, once the
/// pipelines the candidates must fit are loaded. Refused ones are logged and kept for the admin
/// API like any refused version.
pub fn offer_shadow_files(swapper: &PluginSwapper) {
    let Ok(entries) = std::fs::read_dir(swapper.dir()) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(|entry| entry.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if let Some(name) = shadow_file_plugin(&path) {
            offer_shadow_file(swapper, name, &path);
        } else if let Some(name) = canary_file_plugin(&path) {
            offer_canary_file(swapper, name, &path);
        }
    }
}

/// Writes an accepted upload to `dir/<name>.wasm` by temporary file and rename, so a restart
/// keeps it and a watcher never reads half a file.
///
/// # Errors
/// When the file cannot be written.
pub fn persist_component(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    persist_file(dir, &format!("{name}.wasm"), bytes)
}

/// Writes an accepted candidate to `dir/<name>.shadow.wasm`, as [`persist_component`] does, so
/// a restart shadows with it again.
///
/// # Errors
/// When the file cannot be written.
pub fn persist_candidate(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    persist_file(dir, &format!("{name}{SHADOW_FILE_SUFFIX}"), bytes)
}

/// Writes an accepted canary candidate to `dir/<name>.canary.wasm`, as [`persist_component`]
/// does, so a restart serves it again (with the host's canary settings).
///
/// # Errors
/// When the file cannot be written.
pub fn persist_canary(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    persist_file(dir, &format!("{name}{CANARY_FILE_SUFFIX}"), bytes)
}

/// Removes `dir/<name>.canary.wasm`; a file already gone is no error.
///
/// # Errors
/// When the file exists and cannot be removed.
pub fn remove_canary(dir: &Path, name: &str) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(format!("{name}{CANARY_FILE_SUFFIX}"))) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Removes `dir/<name>.shadow.wasm`; a file already gone is no error.
///
/// # Errors
/// When the file exists and cannot be removed.
pub fn remove_candidate(dir: &Path, name: &str) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(format!("{name}{SHADOW_FILE_SUFFIX}"))) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

fn persist_file(dir: &Path, file_name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let destination = dir.join(file_name);
    let temporary = dir.join(format!(".{file_name}.upload"));
    let written = std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, &destination));
    if let Err(error) = written {
        // A half-written upload must not stay beside the plugins; the running version is kept.
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    Ok(destination)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_wasm_files_are_components() {
        assert!(is_component_file(Path::new("/p/mail-request.wasm")));
        assert!(!is_component_file(Path::new("/p/.mail-request.wasm.tmp")));
        assert!(!is_component_file(Path::new("/p/.mail-request.wasm")));
        assert!(!is_component_file(Path::new("/p/notes.txt")));
        assert!(is_component_file(Path::new("/p/mail-request.shadow.wasm")));
        assert!(is_component_file(Path::new("/p/mail-request.canary.wasm")));
        assert!(!is_component_file(Path::new("/p/mail-request.canary.rolled-back.wasm")));
    }

    #[test]
    fn a_shadow_file_names_the_plugin_it_shadows() {
        assert_eq!(shadow_file_plugin(Path::new("/p/mail-request.shadow.wasm")), Some("mail-request"));
        assert_eq!(shadow_file_plugin(Path::new("/p/mail-request.wasm")), None);
        assert_eq!(shadow_file_plugin(Path::new("/p/.shadow.wasm")), None);
        assert_eq!(shadow_file_plugin(Path::new("/p/.x.shadow.wasm")), None);
    }

    #[test]
    fn a_candidate_is_kept_beside_the_plugin_and_removed_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = persist_candidate(dir.path(), "p", b"candidate").expect("persist");
        assert_eq!(path, dir.path().join("p.shadow.wasm"));
        remove_candidate(dir.path(), "p").expect("remove");
        remove_candidate(dir.path(), "p").expect("removing it twice is fine");
        assert!(std::fs::read_dir(dir.path()).expect("list").next().is_none());
    }

    #[test]
    fn canary_files_name_their_plugin_and_rolled_back_ones_are_never_components() {
        assert_eq!(canary_file_plugin(Path::new("/p/mail-request.canary.wasm")), Some("mail-request"));
        assert_eq!(canary_file_plugin(Path::new("/p/.canary.wasm")), None);
        assert_eq!(canary_file_plugin(Path::new("/p/mail-request.canary.rolled-back.wasm")), None);
        for candidate in ["p.shadow.wasm", "p.canary.wasm", "p.canary.rolled-back.wasm"] {
            assert!(crate::plugin::is_candidate_file(Path::new(candidate)), "{candidate}");
        }
        assert!(!crate::plugin::is_candidate_file(Path::new("p.wasm")));
    }

    #[test]
    fn a_canary_is_kept_beside_the_plugin_and_removed_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = persist_canary(dir.path(), "p", b"candidate").expect("persist");
        assert_eq!(path, dir.path().join("p.canary.wasm"));
        remove_canary(dir.path(), "p").expect("remove");
        remove_canary(dir.path(), "p").expect("removing it twice is fine");
        assert!(std::fs::read_dir(dir.path()).expect("list").next().is_none());
    }

    #[test]
    fn a_persisted_upload_replaces_the_file_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("p.wasm"), b"old").expect("seed");
        let path = persist_component(dir.path(), "p", b"new bytes").expect("persist");
        assert_eq!(std::fs::read(path).expect("read"), b"new bytes");
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, ["p.wasm"]);
    }

    #[test]
    fn a_failed_persist_leaves_no_upload_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A directory where the component should go makes the rename fail.
        std::fs::create_dir(dir.path().join("p.wasm")).expect("seed");
        assert!(persist_component(dir.path(), "p", b"new bytes").is_err());
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, ["p.wasm"], "the temporary file is removed");
    }
}
