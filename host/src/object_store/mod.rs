//! Object storage: where table files, dead letters and job inputs live.
//!
//! One small interface over an S3 bucket ([`S3Bucket`]) and a local directory
//! ([`LocalDir`], the quick start's stand-in), so the sinks and `sluice sweep` are written once.
//! Keys are `/`-separated in both.

pub mod compression;
mod local;
mod locations;
pub mod retry;
mod s3;

use std::path::PathBuf;

use bytes::Bytes;

pub use local::LocalDir;
pub use locations::{LocationError, ObjectStores};
pub use s3::{S3Bucket, S3Client};

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("S3 {operation} of s3://{bucket}/{key} failed: {message}")]
    S3 { operation: &'static str, bucket: String, key: String, message: String },
    #[error("{operation} of {path} failed: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key `{0}` is not a relative path without `..`")]
    BadKey(String),
}

/// What a listing or a `head` tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// The entity tag, quotes removed: a version stamp for "load each file once". Local files
    /// use their size and modification time.
    pub etag: String,
}

/// A bucket or a directory, addressed by key.
#[derive(Debug, Clone)]
pub enum ObjectStore {
    S3(S3Bucket),
    Local(LocalDir),
}

impl ObjectStore {
    /// A human-readable location for logs and messages: `s3://bucket/key` or a path.
    pub fn describe(&self, key: &str) -> String {
        match self {
            ObjectStore::S3(bucket) => format!("s3://{}/{key}", bucket.name()),
            ObjectStore::Local(dir) => dir.path_of(key).map(|p| p.display().to_string()).unwrap_or_default(),
        }
    }

    /// Stores `body` under `key`, replacing what was there; readers see the old or the new
    /// object, never a part.
    ///
    /// # Errors
    /// [`StoreError`] when the write fails.
    pub async fn put(&self, key: &str, body: impl Into<Bytes>) -> Result<(), StoreError> {
        match self {
            ObjectStore::S3(bucket) => bucket.put(key, body.into()).await,
            ObjectStore::Local(dir) => dir.put(key, body.into()).await,
        }
    }

    /// The object's bytes, or `None` when there is no such key.
    ///
    /// # Errors
    /// [`StoreError`] when the read fails for another reason.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            ObjectStore::S3(bucket) => bucket.get(key).await,
            ObjectStore::Local(dir) => dir.get(key).await,
        }
    }

    /// Streams the object's body, or `None` when there is no such key. A local file is read
    /// whole first (local stores hold the quick start's small objects).
    ///
    /// # Errors
    /// [`StoreError`] when the read fails for another reason.
    pub async fn open(
        &self,
        key: &str,
    ) -> Result<Option<std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>>, StoreError> {
        Ok(match self {
            ObjectStore::S3(bucket) => bucket.open(key).await?.map(|body| Box::pin(body) as _),
            ObjectStore::Local(dir) => {
                dir.get(key).await?.map(|bytes| Box::pin(std::io::Cursor::new(bytes)) as _)
            }
        })
    }

    /// The object's size and version, or `None` when there is no such key.
    ///
    /// # Errors
    /// [`StoreError`] when the call fails for another reason.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        match self {
            ObjectStore::S3(bucket) => bucket.head(key).await,
            ObjectStore::Local(dir) => dir.head(key).await,
        }
    }

    /// Every object whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    /// [`StoreError`] when a listing call fails.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        match self {
            ObjectStore::S3(bucket) => bucket.list(prefix).await,
            ObjectStore::Local(dir) => dir.list(prefix).await,
        }
    }

    /// Copies `from` to `to` within the store.
    ///
    /// # Errors
    /// [`StoreError`] when `from` cannot be read or `to` cannot be written.
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        match self {
            ObjectStore::S3(bucket) => bucket.copy(from, to).await,
            ObjectStore::Local(dir) => dir.copy(from, to).await,
        }
    }

    /// Deletes `key`; deleting a missing key is not an error.
    ///
    /// # Errors
    /// [`StoreError`] when the call fails.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            ObjectStore::S3(bucket) => bucket.delete(key).await,
            ObjectStore::Local(dir) => dir.delete(key).await,
        }
    }
}

/// Joins a prefix and a name with exactly one `/` between them (none when the prefix is empty).
pub fn join_key(prefix: &str, name: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_join_with_one_slash() {
        assert_eq!(join_key("a/b/", "c"), "a/b/c");
        assert_eq!(join_key("a/b", "c"), "a/b/c");
        assert_eq!(join_key("", "c"), "c");
    }
}
