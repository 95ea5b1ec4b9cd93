//! Errors of loading and calling plugins.

use std::path::PathBuf;
use std::time::Duration;

/// Why a plugin could not be loaded or a call into it did not complete.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read plugin file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{origin} is not a valid WebAssembly component: {message}")]
    Compile { origin: String, message: String },
    #[error(
        "{origin} was built for {package}@{found}, but this host runs {package}@{supported}; rebuild the plugin against wit/transform.wit"
    )]
    WitVersion { origin: String, package: &'static str, found: String, supported: String },
    #[error("{origin} describes itself in a way this host cannot use: {message}")]
    BadInfo { origin: String, message: String },
    #[error(
        "{origin} does not export the {package}/transformer interface; build it with the sluice plugin SDK or wit/transform.wit"
    )]
    NotATransform { origin: String, package: &'static str },
    #[error("{origin} needs something the sandbox does not grant: {message}")]
    Link { origin: String, message: String },
    #[error("plugin file {path} declares the name `{declared}`; the file must be named `{declared}.wasm`")]
    NameMismatch { path: PathBuf, declared: String },
    #[error("plugin `{plugin}` rejected its configuration: {message}")]
    Init { plugin: String, message: String },
    #[error("plugin `{plugin}` exceeded its time limit of {limit:?}")]
    Timeout { plugin: String, limit: Duration },
    #[error("plugin `{plugin}` exceeded its memory limit of {limit_mb} MiB")]
    MemoryLimit { plugin: String, limit_mb: u64 },
    #[error("plugin `{plugin}` trapped: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin `{plugin}` failed the whole batch: {message}")]
    BatchRejected { plugin: String, message: String },
    #[error("plugin `{plugin}` returned output `{output}`, which its info does not declare")]
    UndeclaredOutput { plugin: String, output: String },
    #[error("no plugin named `{0}` is loaded")]
    NotLoaded(String),
    #[error("plugin cache at {path}: {source}")]
    Cache { path: PathBuf, source: std::io::Error },
    #[error("the plugin runtime could not start: {0}")]
    Engine(String),
    #[error("{origin} declares the name `{declared}`, but it was offered as `{expected}`")]
    WrongName { origin: String, declared: String, expected: String },
    #[error("{origin} cannot replace `{plugin}`: {problems}")]
    Incompatible { origin: String, plugin: String, problems: String },
}

impl PluginError {
    /// Whether the call was stopped by the sandbox (time, memory, trap) rather than by the
    /// plugin's own decision; these count as traps in metrics and the admin API.
    pub fn is_trap(&self) -> bool {
        self.trap_kind().is_some()
    }

    /// Which sandbox limit stopped the call (`timeout`, `memory`, `trap`), if one did.
    pub fn trap_kind(&self) -> Option<&'static str> {
        match self {
            PluginError::Timeout { .. } => Some("timeout"),
            PluginError::MemoryLimit { .. } => Some("memory"),
            PluginError::Trap { .. } => Some("trap"),
            _ => None,
        }
    }
}
