//! Plugin names mapped to their current version, swappable while calls run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;

use super::PluginError;
use super::cache::CompileCache;
use super::engine::PluginEngine;
use super::loaded::{LoadedPlugin, PluginCall};
use super::{BatchResult, RecordIn};
use crate::telemetry;

/// A plugin name's slot: the current version, swapped atomically on reload, and its counters.
///
/// Pipelines hold handles, so a swap reaches every pipeline at once; a call that already
/// took the old version finishes on it.
#[derive(Clone)]
pub struct PluginHandle {
    current: Arc<ArcSwap<LoadedPlugin>>,
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
        let handle = self.clone();
        let plugin_name = self.current().name().to_string();
        tokio::task::spawn_blocking(move || handle.transform_blocking(&call, &batch)).await.unwrap_or_else(
            |join_error| {
                Err(PluginError::Trap { plugin: plugin_name, message: format!("call aborted: {join_error}") })
            },
        )
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
        let plugin = self.current();
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

    /// Loads every `*.wasm` file in `dir` (not recursively), returning the files that failed
    /// with their errors; the others are installed.
    ///
    /// # Errors
    /// When `dir` itself cannot be read.
    pub fn load_dir(&self, dir: &Path) -> Result<Vec<(PathBuf, PluginError)>, PluginError> {
        let read_error = |source| PluginError::Read { path: dir.to_path_buf(), source };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_error)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm") && path.is_file())
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
        let handle = PluginHandle { current: Arc::new(ArcSwap::from_pointee(plugin)), stats: Arc::default() };
        plugins.insert(name, handle.clone());
        handle
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
