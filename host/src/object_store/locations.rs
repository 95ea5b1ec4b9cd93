//! Turns the storage locations named in pipelines into object stores, sharing one S3 client.

use tokio::sync::OnceCell;

use super::{LocalDir, ObjectStore, S3Client};
use crate::config::{S3Config, StoreLocation};

/// Why a location cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("cannot create the directory {path}: {source}")]
    LocalDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Resolves [`StoreLocation`]s; the S3 client is built on first use, so a host without S3
/// pipelines never loads AWS credentials.
#[derive(Debug)]
pub struct ObjectStores {
    s3_config: S3Config,
    s3: OnceCell<S3Client>,
}

impl ObjectStores {
    pub fn new(s3_config: S3Config) -> Self {
        ObjectStores { s3_config, s3: OnceCell::new() }
    }

    /// The process's S3 client.
    pub async fn s3(&self) -> &S3Client {
        self.s3.get_or_init(|| S3Client::new(&self.s3_config)).await
    }

    /// The store behind `location`; a local directory is created if missing.
    ///
    /// # Errors
    /// [`LocationError`] when a local directory cannot be created.
    pub async fn store(&self, location: &StoreLocation) -> Result<ObjectStore, LocationError> {
        match location {
            StoreLocation::S3 { bucket, .. } => Ok(ObjectStore::S3(self.s3().await.bucket(bucket))),
            StoreLocation::Local { dir } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|source| LocationError::LocalDir { path: dir.display().to_string(), source })?;
                Ok(ObjectStore::Local(LocalDir::new(dir)))
            }
        }
    }
}
