//! Window markers: before a window is stored, an object naming the window's last offset is
//! stored under the pipeline's dead-letter location, whatever its sinks are, and it is removed
//! once the offsets are committed.
//! A member that finds a marker where it opens a window replays that window to the same last
//! offset, so it writes exactly the objects of the attempt that did not commit.

use serde::{Deserialize, Serialize};

use crate::object_store::{ObjectStore, StoreError, join_key};
use crate::sink::window_stem::window_stem;

/// Where markers live under the dead-letter prefix: apart from the dead letters themselves
/// (`*.jsonl`), so `sluice sweep` never takes one for them.
const MARKER_DIR: &str = "_sluice/windows";

/// What a marker records: where the window ended.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct WindowMarker {
    last_offset: i64,
}

/// The marker of the window of `topic`/`partition` opening at `first_offset`, in `store` under
/// `prefix`.
#[derive(Debug, Clone)]
pub struct Marker {
    store: ObjectStore,
    key: String,
}

impl Marker {
    pub fn new(store: ObjectStore, prefix: &str, topic: &str, partition: i32, first_offset: i64) -> Self {
        let name = format!("{MARKER_DIR}/{}.json", window_stem(topic, partition, first_offset));
        Marker { store, key: join_key(prefix, &name) }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The body stored before the window's objects.
    pub fn body(last_offset: i64) -> Vec<u8> {
        // A struct of one number always serializes.
        serde_json::to_vec(&WindowMarker { last_offset }).unwrap_or_default()
    }

    /// The last offset an earlier attempt recorded, if it left a marker; an unreadable marker
    /// is ignored (the window then closes by its limits, as a first attempt would).
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    pub async fn read(&self) -> Result<Option<i64>, StoreError> {
        let Some(bytes) = self.store.get(&self.key).await? else { return Ok(None) };
        match serde_json::from_slice::<WindowMarker>(&bytes) {
            Ok(marker) => Ok(Some(marker.last_offset)),
            Err(error) => {
                tracing::warn!(marker = %self.store.describe(&self.key), "ignoring an unreadable window marker: {error}");
                Ok(None)
            }
        }
    }

    pub fn store(&self) -> &ObjectStore {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object_store::LocalDir;

    fn marker(dir: &tempfile::TempDir, first_offset: i64) -> Marker {
        let store = ObjectStore::Local(LocalDir::new(dir.path()));
        Marker::new(store, "tables/events", "sendgrid-events", 2, first_offset)
    }

    #[test]
    fn the_key_is_the_window_stem_apart_from_the_partitions() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            marker(&dir, 41).key(),
            "tables/events/_sluice/windows/sendgrid-events+2+00000000000000000041.json"
        );
    }

    #[test]
    fn a_marker_records_the_last_offset() {
        assert_eq!(Marker::body(97), br#"{"last_offset":97}"#);
    }

    #[tokio::test]
    async fn a_stored_marker_reads_back_and_none_reads_as_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = marker(&dir, 0);
        assert_eq!(first.read().await.expect("read"), None);
        first.store().put(first.key(), Marker::body(1_234)).await.expect("put");
        assert_eq!(first.read().await.expect("read"), Some(1_234));
        assert_eq!(marker(&dir, 1).read().await.expect("read"), None, "another window's");
    }

    #[tokio::test]
    async fn an_unreadable_marker_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = marker(&dir, 0);
        marker.store().put(marker.key(), &b"{\"last\": "[..]).await.expect("put");
        assert_eq!(marker.read().await.expect("read"), None);
    }
}
