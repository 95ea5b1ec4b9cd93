//! Configuration errors that name the file, the key and what is allowed.

use std::path::PathBuf;

/// A configuration file that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: `{key}`: {problem}")]
    Invalid { path: PathBuf, key: String, problem: String },
}
