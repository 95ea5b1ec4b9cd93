//! Compiled components cached on disk as `.cwasm`, keyed by the component's content hash.
//!
//! Compiling a component takes seconds; loading a cached one takes milliseconds. Files are
//! written to a temporary name and renamed into place, because a `.cwasm` is memory-mapped
//! when loaded and overwriting a mapped file in place crashes the process that maps it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::PluginError;
use super::engine::PluginEngine;

/// Where compiled components live; `None` compiles every time (tests, `plugin test`).
#[derive(Debug, Clone, Default)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// Hex SHA-256 of a component's bytes: its identity in the cache and the admin API.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl CompileCache {
    /// A cache in `dir`, created on first write.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        CompileCache { dir: Some(dir.into()) }
    }

    /// No cache: compile on every load.
    pub fn disabled() -> Self {
        CompileCache { dir: None }
    }

    /// The compiled form of `bytes`, from the cache when present and compatible.
    ///
    /// # Errors
    /// When `bytes` is not a valid component, or the cache directory cannot be written.
    pub fn component(
        &self,
        engine: &PluginEngine,
        origin: &str,
        bytes: &[u8],
        hash: &str,
    ) -> Result<Component, PluginError> {
        let compile_error = |e: wasmtime::Error| PluginError::Compile {
            origin: origin.to_string(),
            message: format!("{e:#}"),
        };
        let Some(dir) = &self.dir else {
            return Component::new(engine.engine(), bytes).map_err(compile_error);
        };
        let path = dir.join(format!("{hash}-{}.cwasm", engine_fingerprint(engine)));
        if path.exists() {
            // SAFETY: the file was produced by `precompile_component` of an engine with the same
            // compatibility fingerprint and is only ever replaced by rename, never rewritten.
            match unsafe { Component::deserialize_file(engine.engine(), &path) } {
                Ok(component) => return Ok(component),
                Err(error) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached plugin: {error:#}")
                }
            }
        }
        let compiled = engine.engine().precompile_component(bytes).map_err(compile_error)?;
        write_atomically(dir, &path, &compiled)?;
        // SAFETY: as above; we just wrote this file from `precompile_component`.
        unsafe { Component::deserialize(engine.engine(), &compiled) }.map_err(compile_error)
    }
}

/// Distinguishes cache files of engines whose compiled code is not interchangeable.
fn engine_fingerprint(engine: &PluginEngine) -> String {
    let mut hasher = DefaultHasher::new();
    engine.engine().precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), PluginError> {
    let cache_error = |source| PluginError::Cache { path: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(cache_error)?;
    let temp = dir.join(format!(".{}.{}.tmp", std::process::id(), unique_suffix()));
    std::fs::write(&temp, bytes).map_err(cache_error)?;
    std::fs::rename(&temp, path).map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        cache_error(source)
    })
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
