//! A job's dead letters: input records the plugins refused (not JSON, not an object, or any
//! other refusal), kept as JSON lines under `{prefix}/{job id}/` so every record that entered
//! a job leaves as a row, an error row or a dead letter.
//!
//! An attempt first removes what an earlier attempt of the same job left there, then writes
//! its letters in objects named by the first record they hold. The objects are written before
//! the load commits, so a job marked succeeded always has its letters in place; a failed
//! attempt's letters are replaced by the retry's.

use uuid::Uuid;

use super::records::ObjectVersion;
use crate::object_store::{ObjectStore, StoreError, join_key};
use crate::pipeline::ChainFailure;
use crate::sink::dead_letter::{DeadLetter, JobFileOrigin, Origin};

/// Letters are buffered up to this many bytes of JSON lines before an object is written, which
/// bounds an attempt's memory however many records are refused.
const OBJECT_BYTES: usize = 8 << 20;

/// Where one job's dead letters go, and those of the running attempt not yet written.
pub struct JobDeadLetters {
    store: ObjectStore,
    folder: String,
    pending: Vec<u8>,
    pending_first: u64,
    written: u64,
}

impl JobDeadLetters {
    /// The folder of job `id` under `prefix`, ending in `/`.
    pub fn folder(prefix: &str, id: Uuid) -> String {
        join_key(prefix, &format!("{id}/"))
    }

    /// Starts an attempt of job `id`: the letters of earlier attempts are removed.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be listed or cleared.
    pub async fn start(store: ObjectStore, prefix: &str, id: Uuid) -> Result<Self, StoreError> {
        let folder = Self::folder(prefix, id);
        for earlier in store.list(&folder).await? {
            store.delete(&earlier.key).await?;
        }
        Ok(JobDeadLetters { store, folder, pending: Vec::new(), pending_first: 0, written: 0 })
    }

    /// Where the letters go, as `s3://bucket/folder/` or a path.
    pub fn location(&self) -> String {
        self.store.describe(&self.folder)
    }

    /// How many letters this attempt has added.
    pub fn count(&self) -> u64 {
        self.written
    }

    /// Adds a letter; an object is written once enough are buffered.
    ///
    /// # Errors
    /// [`StoreError`] when that object cannot be written.
    pub async fn add(&mut self, letter: &DeadLetter) -> Result<(), StoreError> {
        if self.pending.is_empty()
            && let Origin::JobFile(at) = &letter.origin
        {
            self.pending_first = at.record;
        }
        // Strings, numbers and booleans always serialize.
        if serde_json::to_writer(&mut self.pending, letter).is_ok() {
            self.pending.push(b'\n');
        }
        self.written += 1;
        if self.pending.len() >= OBJECT_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes what is buffered; returns how many letters the attempt wrote in all.
    ///
    /// # Errors
    /// [`StoreError`] when the last object cannot be written.
    pub async fn finish(mut self) -> Result<u64, StoreError> {
        self.flush().await?;
        Ok(self.written)
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let key = join_key(&self.folder, &format!("{:012}.jsonl", self.pending_first));
        self.store.put(&key, std::mem::take(&mut self.pending)).await
    }
}

/// Where a refused record was read: its number and byte offset in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPlace {
    pub number: u64,
    pub offset: Option<u64>,
}

/// A letter for the record at `place` of `object` in job `job_id`, refused for `reason`.
pub fn job_dead_letter(
    job_id: Uuid,
    object: &ObjectVersion,
    place: RecordPlace,
    value: &[u8],
    failure: &ChainFailure,
    reason: String,
) -> DeadLetter {
    let origin = Origin::JobFile(JobFileOrigin {
        job_id,
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        etag: object.etag.clone(),
        record: place.number,
        byte_offset: place.offset,
    });
    DeadLetter::new(origin, value, failure, Some(reason))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::object_store::LocalDir;
    use crate::sink::dead_letter::RawBytes;

    fn failure(part: Option<&[u8]>) -> ChainFailure {
        ChainFailure {
            field: None,
            source_index: 0,
            step: "validate".into(),
            reason: "not a JSON object".into(),
            trapped: false,
            plugin_version: Arc::from("validate@1.0.0"),
            part: part.map(<[u8]>::to_vec),
        }
    }

    fn object() -> ObjectVersion {
        ObjectVersion { bucket: "b".into(), key: "in/k.jsonl".into(), etag: "e1".into(), size: 10 }
    }

    #[tokio::test]
    async fn an_attempt_replaces_the_letters_of_the_one_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ObjectStore::Local(LocalDir::new(dir.path()));
        let id = Uuid::nil();
        let mut first = JobDeadLetters::start(store.clone(), "dl", id).await.expect("start");
        for record in [3, 9] {
            let place = RecordPlace { number: record, offset: Some(record * 10) };
            let letter = job_dead_letter(id, &object(), place, b"{oops", &failure(None), "bad".into());
            first.add(&letter).await.expect("add");
        }
        assert_eq!(first.finish().await.expect("finish"), 2);
        let folder = JobDeadLetters::folder("dl", id);
        let keys: Vec<String> = store.list(&folder).await.expect("list").into_iter().map(|o| o.key).collect();
        assert_eq!(keys, vec![format!("{folder}000000000003.jsonl")]);
        let text = store.get(&keys[0]).await.expect("get").expect("object");
        let letters: Vec<DeadLetter> = text
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).expect("a letter"))
            .collect();
        let places = letters.iter().map(|letter| match &letter.origin {
            Origin::JobFile(at) => Some((at.record, at.byte_offset)),
            Origin::Kafka(_) => None,
        });
        assert_eq!(places.collect::<Vec<_>>(), vec![Some((3, Some(30))), Some((9, Some(90)))]);
        assert_eq!(
            DeadLetter::parse_line(&text[..text.iter().position(|b| *b == b'\n').expect("a line")]),
            Some(letters[0].clone())
        );
        assert_eq!(letters[0].value, RawBytes::Text("{oops".into()));
        let Origin::JobFile(at) = &letters[0].origin else { panic!("a job's letter: {:?}", letters[0]) };
        assert_eq!((at.key.as_str(), at.etag.as_str(), at.job_id), ("in/k.jsonl", "e1", id));
        assert!(letters[0].kafka().is_none(), "a job's letter is not read as a Kafka record's");

        let retry = JobDeadLetters::start(store.clone(), "dl", id).await.expect("restart");
        assert_eq!(retry.finish().await.expect("finish"), 0);
        assert!(store.list(&folder).await.expect("list").is_empty(), "the retry refused nothing");
    }

    #[test]
    fn a_failed_part_is_kept_instead_of_the_whole_record() {
        let place = RecordPlace { number: 1, offset: None };
        let letter =
            job_dead_letter(Uuid::nil(), &object(), place, b"[1,2]", &failure(Some(b"2")), "bad".into());
        assert_eq!((letter.value, letter.part), (RawBytes::Text("2".into()), true));
    }
}
