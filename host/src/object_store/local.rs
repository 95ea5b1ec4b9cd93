//! A local directory used like a bucket: the quick start's table and dead letters without S3.

use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use bytes::Bytes;

use super::{ObjectMeta, StoreError};

/// Objects as files under one directory; keys are relative paths.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

fn io(operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { operation, path, source }
}

impl LocalDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDir { root: root.into() }
    }

    /// The file behind `key`; keys cannot leave the directory.
    ///
    /// # Errors
    /// [`StoreError::BadKey`] for an absolute key or one with `..`.
    pub fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        let relative = Path::new(key);
        if key.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(StoreError::BadKey(key.to_owned()));
        }
        Ok(self.root.join(relative))
    }

    pub(super) async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io("creating the directory", parent))?;
        }
        // Write then rename, so a reader never sees half a file.
        let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
        tokio::fs::write(&temporary, &body).await.map_err(io("writing", &temporary))?;
        tokio::fs::rename(&temporary, &path).await.map_err(io("renaming into place", &path))?;
        Ok(())
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io("reading", &path)(error)),
        }
    }

    pub(super) async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(metadata) if metadata.is_file() => Ok(Some(meta(key, &metadata))),
            Ok(_) => Ok(None),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io("inspecting", &path)(error)),
        }
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        let listed = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            walk(&root, &root, &prefix, &mut found)?;
            found.sort_by(|a: &ObjectMeta, b| a.key.cmp(&b.key));
            Ok(found)
        })
        .await;
        match listed {
            Ok(result) => result,
            Err(join) => Err(StoreError::Io {
                operation: "listing",
                path: self.root.clone(),
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }

    pub(super) async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let source = self.path_of(from)?;
        let bytes = tokio::fs::read(&source).await.map_err(io("reading", &source))?;
        self.put(to, Bytes::from(bytes)).await
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io("deleting", &path)(error)),
        }
    }
}

fn meta(key: &str, metadata: &std::fs::Metadata) -> ObjectMeta {
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    ObjectMeta {
        key: key.to_owned(),
        size: metadata.len(),
        etag: format!("{:x}-{modified:x}", metadata.len()),
    }
}

/// Collects the files under `dir` whose key starts with `prefix`, skipping temporary files.
fn walk(root: &Path, dir: &Path, prefix: &str, found: &mut Vec<ObjectMeta>) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io("listing", dir)(error)),
    };
    for entry in entries {
        let entry = entry.map_err(io("listing", dir))?;
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(root) else { continue };
        let key =
            relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        let metadata = entry.metadata().map_err(io("inspecting", &path))?;
        if metadata.is_dir() {
            // Descend only where keys under the directory can still match the prefix.
            let as_prefix = format!("{key}/");
            if as_prefix.starts_with(prefix) || prefix.starts_with(&as_prefix) {
                walk(root, &path, prefix, found)?;
            }
        } else if key.starts_with(prefix) && !key.contains(".tmp-") {
            found.push(meta(&key, &metadata));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn objects_round_trip_list_copy_and_delete() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalDir::new(dir.path());
        store.put("t/dt=1/a.parquet", Bytes::from_static(b"one")).await.expect("put");
        store.put("t/dt=2/b.parquet", Bytes::from_static(b"two")).await.expect("put");
        store.put("u/c", Bytes::from_static(b"three")).await.expect("put");
        assert_eq!(store.get("t/dt=1/a.parquet").await.expect("get"), Some(b"one".to_vec()));
        assert_eq!(store.get("t/missing").await.expect("get"), None);
        let keys: Vec<String> = store.list("t/").await.expect("list").into_iter().map(|m| m.key).collect();
        assert_eq!(keys, ["t/dt=1/a.parquet", "t/dt=2/b.parquet"]);
        store.copy("u/c", "v/c").await.expect("copy");
        store.delete("u/c").await.expect("delete");
        store.delete("u/c").await.expect("deleting twice is fine");
        assert_eq!(store.head("u/c").await.expect("head"), None);
        assert_eq!(store.head("v/c").await.expect("head").map(|m| m.size), Some(5));
    }

    #[test]
    fn keys_cannot_escape_the_directory() {
        let store = LocalDir::new("/data");
        assert!(matches!(store.path_of("../etc/passwd"), Err(StoreError::BadKey(_))));
        assert!(matches!(store.path_of("/etc/passwd"), Err(StoreError::BadKey(_))));
        assert!(store.path_of("a/b").is_ok());
    }
}
