//! Plugin names mapped to their current version, swappable while calls run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};

use super::PluginError;
use super::cache::CompileCache;
use super::canary::{BatchOutcome, Canary, Rollback};
use super::engine::PluginEngine;
use super::loaded::{LoadedPlugin, PluginCall};
use super::shadow::{SampleSink, Shadow};
use super::{BatchResult, RecordIn};
use crate::telemetry;

/// A plugin name's slot: the current version, swapped atomically on reload, and its counters.
///
/// Pipelines hold handles, so a swap reaches every pipeline at once; a call that already
/// took the old version finishes on it. A candidate version may shadow the current one, and
/// another serve a share of the traffic as a canary.
#[derive(Clone)]
pub struct PluginHandle {
    current: Arc<ArcSwap<LoadedPlugin>>,
    shadow: Arc<ArcSwapOption<Shadow>>,
    /// The canary rollout, kept after it ends so its verdict can be read.
    canary: Arc<ArcSwapOption<Canary>>,
    stats: Arc<PluginStats>,
}

/// Call counters of one plugin name, kept across versions.
#[derive(Debug, Default)]
pub struct PluginStats {
    pub calls: AtomicU64,
    pub failed_records: AtomicU64,
    pub batch_errors: AtomicU64,
    pub traps: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl PluginStats {
    /// The most recent call or load error, for the admin API.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn record_error(&self, error: &PluginError) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error.to_string());
        }
    }
}

/// A batch's answer with the exact plugin version that produced it.
#[derive(Debug)]
pub struct Transformed {
    pub result: BatchResult,
    pub plugin: Arc<LoadedPlugin>,
}

impl PluginHandle {
    /// The version new calls will use.
    pub fn current(&self) -> Arc<LoadedPlugin> {
        self.current.load_full()
    }

    pub fn stats(&self) -> &PluginStats {
        &self.stats
    }

    /// Runs a batch on a blocking thread so the async runtime keeps serving. The batch is
    /// shared, so a caller that keeps the records (for dead letters, a second step) copies none.
    ///
    /// # Errors
    /// As [`LoadedPlugin::transform`]; a panic of the blocking task becomes a trap error.
    pub async fn transform(
        &self,
        call: Arc<PluginCall>,
        batch: Arc<[RecordIn]>,
    ) -> Result<Transformed, PluginError> {
        self.transform_shadowed(call, batch, None).await
    }

    /// As [`PluginHandle::transform`]; when a candidate shadows the current version, the batch
    /// is offered to it afterwards (see [`Shadow::offer`]), with `samples` keeping the records
    /// whose results differ. The answer is the current version's, never delayed by the candidate.
    ///
    /// # Errors
    /// As [`PluginHandle::transform`].
    pub async fn transform_shadowed(
        &self,
        call: Arc<PluginCall>,
        batch: Arc<[RecordIn]>,
        samples: Option<Arc<dyn SampleSink>>,
    ) -> Result<Transformed, PluginError> {
        let handle = self.clone();
        let plugin_name = self.current().name().to_string();
        let shadow = self.shadow();
        let kept = shadow.as_ref().map(|_| (call.clone(), batch.clone()));
        // Timed on the blocking thread, as the candidate is, so the two times compare.
        let (outcome, elapsed) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let outcome = handle.transform_blocking(&call, &batch);
            (outcome, started.elapsed())
        })
        .await
        .unwrap_or_else(|join_error| {
            let message = format!("call aborted: {join_error}");
            (Err(PluginError::Trap { plugin: plugin_name, message }), Duration::ZERO)
        });
        if let (Some(shadow), Some((call, batch))) = (shadow, kept) {
            let current_version = match &outcome {
                Ok(done) => done.plugin.version().to_owned(),
                Err(_) => self.current().version().to_owned(),
            };
            let answer = outcome.as_ref().map(|done| &done.result);
            shadow.offer(call, batch, answer, &current_version, elapsed, samples);
        }
        outcome
    }

    /// The candidate shadowing the current version, if any.
    pub fn shadow(&self) -> Option<Arc<Shadow>> {
        self.shadow.load_full()
    }

    /// Makes `candidate` (loaded from `bytes`) shadow the current version, ending the shadow
    /// it replaces.
    pub fn start_shadow(&self, candidate: LoadedPlugin, bytes: Arc<[u8]>) -> Option<Arc<Shadow>> {
        self.shadow.swap(Some(Arc::new(Shadow::new(candidate, bytes))))
    }

    /// Ends the shadow; the candidate it ran is returned, if there was one.
    pub fn end_shadow(&self) -> Option<Arc<Shadow>> {
        self.shadow.swap(None)
    }

    /// Makes the shadowing candidate the current version, in one atomic swap, and ends the
    /// shadow. Only the candidate of content hash `expected` is promoted, so a candidate that
    /// changed since the caller checked it stays a candidate.
    pub fn promote_shadow(&self, expected: &str) -> Option<Arc<Shadow>> {
        let loaded = self.shadow.load_full();
        let shadow = loaded.clone()?;
        if shadow.candidate().content_hash() != expected {
            return None;
        }
        let previous = self.shadow.compare_and_swap(&loaded, None);
        if !(*previous).as_ref().is_some_and(|previous| Arc::ptr_eq(previous, &shadow)) {
            return None;
        }
        self.current.store(shadow.candidate().clone());
        Some(shadow)
    }

    /// The latest canary rollout of this name, serving or ended.
    pub fn canary(&self) -> Option<Arc<Canary>> {
        self.canary.load_full()
    }

    /// The canary rollout, if one serves now.
    pub fn serving_canary(&self) -> Option<Arc<Canary>> {
        self.canary.load_full().filter(|canary| canary.is_serving())
    }

    /// Starts `canary`, replacing any earlier rollout; the one it replaces is returned.
    pub fn start_canary(&self, canary: Canary) -> Option<Arc<Canary>> {
        self.canary.swap(Some(Arc::new(canary)))
    }

    /// Forgets the rollout; the one it held is returned.
    pub fn end_canary(&self) -> Option<Arc<Canary>> {
        self.canary.swap(None)
    }

    /// Makes the serving canary's candidate the current version, in one atomic swap, if it is
    /// still the candidate of content hash `expected` and was not rolled back meanwhile.
    pub fn promote_canary(&self, expected: &str) -> Option<Arc<Canary>> {
        let canary = self.serving_canary()?;
        if canary.candidate().content_hash() != expected || !canary.mark_promoted() {
            return None;
        }
        self.current.store(canary.candidate().clone());
        Some(canary)
    }

    /// Runs a batch on the canary's candidate on a blocking thread, with the same counters as
    /// the current version's calls.
    ///
    /// # Errors
    /// As [`PluginHandle::transform`].
    pub async fn transform_on_candidate(
        &self,
        canary: &Canary,
        call: Arc<PluginCall>,
        batch: Arc<[RecordIn]>,
    ) -> Result<Transformed, PluginError> {
        let handle = self.clone();
        let plugin = canary.candidate().clone();
        let name = plugin.name().to_string();
        tokio::task::spawn_blocking(move || handle.call_blocking(plugin, &call, &batch)).await.unwrap_or_else(
            |join_error| {
                Err(PluginError::Trap { plugin: name, message: format!("call aborted: {join_error}") })
            },
        )
    }

    /// Counts a batch of the canary's candidate (`on_candidate`) or of the current version on
    /// the rest, and reports a rollback the judge decides: warn log, metric, and the candidate's
    /// file renamed so a restart does not serve it again.
    pub fn judge_canary(&self, canary: &Canary, on_candidate: bool, batch: BatchOutcome) {
        let plugin = canary.candidate().name().to_owned();
        let version = if on_candidate {
            canary.candidate().version().to_owned()
        } else {
            self.current().version().to_owned()
        };
        let role = if on_candidate { "candidate" } else { "current" };
        let ok = batch.records.saturating_sub(batch.failed);
        for (outcome, count) in [("ok", ok), ("failed", batch.failed)] {
            metrics::counter!(telemetry::CANARY_RECORDS, "plugin" => plugin.clone(), "version" => version.clone(),
                "role" => role, "outcome" => outcome)
            .increment(count);
        }
        let Some(rollback) = canary.record(on_candidate, batch) else { return };
        report_rollback(canary, &self.current(), &rollback);
    }

    /// Runs a batch on the current thread; see [`PluginHandle::transform`].
    ///
    /// # Errors
    /// As [`LoadedPlugin::transform`].
    pub fn transform_blocking(
        &self,
        call: &PluginCall,
        batch: &[RecordIn],
    ) -> Result<Transformed, PluginError> {
        self.call_blocking(self.current(), call, batch)
    }

    fn call_blocking(
        &self,
        plugin: Arc<LoadedPlugin>,
        call: &PluginCall,
        batch: &[RecordIn],
    ) -> Result<Transformed, PluginError> {
        let name = plugin.name().to_string();
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(telemetry::PLUGIN_CALLS, "plugin" => name.clone()).increment(1);
        let started = Instant::now();
        let outcome = plugin.transform(call, batch);
        metrics::histogram!(telemetry::PLUGIN_DURATION, "plugin" => name.clone())
            .record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(result) => {
                let failed = result.failures.len() as u64;
                self.stats.failed_records.fetch_add(failed, Ordering::Relaxed);
                metrics::counter!(telemetry::PLUGIN_FAILED_RECORDS, "plugin" => name).increment(failed);
                Ok(Transformed { result, plugin })
            }
            Err(error) => {
                if let Some(kind) = error.trap_kind() {
                    self.stats.traps.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(telemetry::PLUGIN_TRAPS, "plugin" => name, "kind" => kind).increment(1);
                } else {
                    self.stats.batch_errors.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(telemetry::PLUGIN_BATCH_ERRORS, "plugin" => name).increment(1);
                }
                self.stats.record_error(&error);
                Err(error)
            }
        }
    }

    fn swap(&self, plugin: LoadedPlugin) {
        self.current.store(Arc::new(plugin));
    }
}

/// Logs and counts a rollback, and renames the candidate's file to
/// `<name>.canary.rolled-back.wasm` so a restart serves the current version only.
fn report_rollback(canary: &Canary, current: &LoadedPlugin, rollback: &Rollback) {
    let candidate = canary.candidate();
    let (plugin, version) = (candidate.name().to_owned(), candidate.version().to_owned());
    tracing::warn!(
        plugin,
        candidate = version,
        current = current.version(),
        reason = rollback.kind,
        "canary rolled back, the current version serves everything again: {}",
        rollback.reason
    );
    metrics::counter!(telemetry::CANARY_ROLLBACKS, "plugin" => plugin.clone(), "candidate_version" => version,
        "reason" => rollback.kind)
    .increment(1);
    let Some(file) = canary.file() else { return };
    let rolled_back = file.with_file_name(format!("{plugin}{ROLLED_BACK_FILE_SUFFIX}"));
    match std::fs::rename(file, &rolled_back) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::error!(
            plugin, path = %file.display(),
            "cannot rename the rolled-back candidate; a restart would serve it again: {error}"
        ),
    }
}

/// A component that was offered for a plugin name and refused; the running version (if any)
/// stays. Kept until a later version of that name is accepted, for the admin API.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The file or upload it came from.
    pub origin: String,
    pub content_hash: String,
    pub error: String,
    pub at: SystemTime,
}

/// Every loaded plugin by name, sharing one engine and compile cache.
pub struct PluginRegistry {
    engine: PluginEngine,
    cache: CompileCache,
    plugins: RwLock<BTreeMap<String, PluginHandle>>,
    rejections: Mutex<BTreeMap<String, Rejection>>,
}

impl PluginRegistry {
    pub fn new(engine: PluginEngine, cache: CompileCache) -> Self {
        PluginRegistry {
            engine,
            cache,
            plugins: RwLock::new(BTreeMap::new()),
            rejections: Mutex::new(BTreeMap::new()),
        }
    }

    /// Remembers that a component offered as `name` was refused, and makes it the name's last
    /// error.
    pub fn record_rejection(&self, name: &str, rejection: Rejection) {
        if let Some(handle) = self.get(name)
            && let Ok(mut last) = handle.stats.last_error.lock()
        {
            *last = Some(rejection.error.clone());
        }
        let mut rejections = self.rejections.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        rejections.insert(name.to_owned(), rejection);
    }

    /// The latest refused component of each name since that name last accepted one.
    pub fn rejections(&self) -> BTreeMap<String, Rejection> {
        self.rejections.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// Loads every `*.wasm` file in `dir` (not recursively) but candidates (`*.shadow.wasm` and
    /// `*.canary.wasm`, started once the pipelines are known, and rolled-back canaries), returning the files that
    /// failed with their errors; the others are installed.
    ///
    /// # Errors
    /// When `dir` itself cannot be read.
    pub fn load_dir(&self, dir: &Path) -> Result<Vec<(PathBuf, PluginError)>, PluginError> {
        let read_error = |source| PluginError::Read { path: dir.to_path_buf(), source };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_error)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm") && path.is_file())
            .filter(|path| !is_candidate_file(path))
            .collect();
        paths.sort();
        let mut failures = Vec::new();
        for path in paths {
            if let Err(error) = self.load_file(&path) {
                failures.push((path, error));
            }
        }
        Ok(failures)
    }

    /// Loads one component file and installs it under its declared name, which must match the
    /// file's stem so that replacing `name.wasm` always replaces plugin `name`.
    ///
    /// # Errors
    /// As [`LoadedPlugin::from_file`], or [`PluginError::NameMismatch`].
    pub fn load_file(&self, path: &Path) -> Result<PluginHandle, PluginError> {
        let plugin = LoadedPlugin::from_file(&self.engine, &self.cache, path)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if stem != plugin.name() {
            return Err(PluginError::NameMismatch {
                path: path.to_path_buf(),
                declared: plugin.name().to_string(),
            });
        }
        Ok(self.install(plugin))
    }

    /// Compiles and checks a component held in memory (an upload); see [`LoadedPlugin::from_bytes`].
    ///
    /// # Errors
    /// As [`LoadedPlugin::from_bytes`].
    pub fn compile(&self, origin: &str, bytes: &[u8]) -> Result<LoadedPlugin, PluginError> {
        LoadedPlugin::from_bytes(&self.engine, &self.cache, origin, bytes)
    }

    /// Makes `plugin` the current version of its name: a new slot, or an atomic swap.
    pub fn install(&self, plugin: LoadedPlugin) -> PluginHandle {
        let name = plugin.name().to_string();
        self.rejections.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&name);
        let mut plugins = self.plugins.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(handle) = plugins.get(&name) {
            handle.swap(plugin);
            return handle.clone();
        }
        let handle = PluginHandle {
            current: Arc::new(ArcSwap::from_pointee(plugin)),
            shadow: Arc::new(ArcSwapOption::empty()),
            canary: Arc::new(ArcSwapOption::empty()),
            stats: Arc::default(),
        };
        plugins.insert(name, handle.clone());
        handle
    }

    /// Forgets the refused version of `name`: a candidate of it was just promoted.
    pub fn clear_rejection(&self, name: &str) {
        self.rejections.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(name);
    }

    pub fn get(&self, name: &str) -> Option<PluginHandle> {
        self.plugins.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(name).cloned()
    }

    /// All plugin names with their handles, sorted by name.
    pub fn list(&self) -> Vec<(String, PluginHandle)> {
        let plugins = self.plugins.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        plugins.iter().map(|(name, handle)| (name.clone(), handle.clone())).collect()
    }
}

/// The suffix of a candidate's file in the plugins directory: `<name>.shadow.wasm`.
pub const SHADOW_FILE_SUFFIX: &str = ".shadow.wasm";

/// The plugin name a candidate's file `<name>.shadow.wasm` shadows; `None` for any other file.
pub fn shadow_file_plugin(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?.strip_suffix(SHADOW_FILE_SUFFIX)?;
    (!name.is_empty() && !name.starts_with('.')).then_some(name)
}

/// The suffix of a canary candidate's file: `<name>.canary.wasm`.
pub const CANARY_FILE_SUFFIX: &str = ".canary.wasm";
/// What a canary's file becomes when it is rolled back: never loaded, kept for inspection.
pub const ROLLED_BACK_FILE_SUFFIX: &str = ".canary.rolled-back.wasm";

/// The plugin name a canary's file `<name>.canary.wasm` is a candidate of; `None` otherwise.
pub fn canary_file_plugin(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?.strip_suffix(CANARY_FILE_SUFFIX)?;
    (!name.is_empty() && !name.starts_with('.')).then_some(name)
}

/// Whether `path` is a candidate's file (shadow, canary or rolled-back canary), which never
/// loads as a current version.
pub fn is_candidate_file(path: &Path) -> bool {
    let rolled_back =
        path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(ROLLED_BACK_FILE_SUFFIX));
    rolled_back || shadow_file_plugin(path).is_some() || canary_file_plugin(path).is_some()
}
