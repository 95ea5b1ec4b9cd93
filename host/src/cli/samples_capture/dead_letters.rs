//! Capturing a pipeline's dead letters: the letters `sluice sweep` has not re-run yet, read from
//! the pipeline's dead-letter store as the sweep reads them, and nothing written or moved.

use serde_json::Value;
use sluice_samples::SampleRecord;

use super::{CaptureError, Captured, json_object};
use crate::config::{DeadLetterConfig, Pipeline, S3Config};
use crate::object_store::compression::decompress_bytes;
use crate::object_store::{LocalDir, ObjectStore, ObjectStores, join_key};
use crate::sink::dead_letter::{DeadLetter, Origin, RawBytes, is_pending_letter};

/// A pipeline's dead-letter store, the prefix its letters are under, and how to name it.
pub(super) struct LetterStore {
    store: ObjectStore,
    prefix: String,
    pub location: String,
}

/// What a dead-letter capture read.
#[derive(Debug, Default)]
pub(super) struct LettersRead {
    /// The objects records were taken from, in the order read.
    pub objects: Vec<String>,
    /// Letters holding only the part of a record the plugin named as failed.
    pub failed_parts: usize,
}

/// The dead-letter store of `pipeline`. A local directory that does not exist holds no letters
/// and is not created.
///
/// # Errors
/// [`CaptureError::NoDeadLetters`] when the pipeline keeps none.
pub(super) async fn store_of(pipeline: &Pipeline, s3: &S3Config) -> Result<LetterStore, CaptureError> {
    match &pipeline.dead_letters {
        None => Err(CaptureError::NoDeadLetters(pipeline.name.clone())),
        Some(DeadLetterConfig::S3 { bucket, prefix }) => Ok(LetterStore {
            store: ObjectStore::S3(ObjectStores::new(s3.clone()).s3().await.bucket(bucket)),
            prefix: prefix.clone(),
            location: format!("s3://{bucket}/{}", join_key(prefix, "")),
        }),
        Some(DeadLetterConfig::Local { dir }) => Ok(LetterStore {
            store: ObjectStore::Local(LocalDir::new(dir)),
            prefix: String::new(),
            location: dir.display().to_string(),
        }),
    }
}

/// Up to `limit` letters not yet swept, by object key then line, only those of `step` when
/// given.
///
/// # Errors
/// [`CaptureError`] when the store fails, an object cannot be decompressed, or a line is not
/// a dead letter.
pub(super) async fn capture(
    letters: &LetterStore,
    step: Option<&str>,
    limit: usize,
) -> Result<(Vec<Captured>, LettersRead), CaptureError> {
    let store = &letters.store;
    let listed = store.list(&join_key(&letters.prefix, "")).await?;
    let pending = listed.into_iter().filter(|meta| is_pending_letter(&letters.prefix, &meta.key));
    let mut captured = Vec::new();
    let mut read = LettersRead::default();
    for meta in pending {
        if captured.len() >= limit {
            break;
        }
        // Swept or deleted since the listing: nothing left to capture there.
        let Some(bytes) = store.get(&meta.key).await? else { continue };
        let name = store.describe(&meta.key);
        let bytes = decompress_bytes(bytes)
            .await
            .map_err(|source| CaptureError::Compressed { object: name.clone(), source })?;
        let before = captured.len();
        for (index, line) in bytes.split(|byte| *byte == b'\n').enumerate() {
            if captured.len() >= limit {
                break;
            }
            if line.trim_ascii().is_empty() {
                continue;
            }
            let (letter, record) = letter_record(&name, index + 1, line)?;
            if step.is_some_and(|step| step != letter.step) {
                continue;
            }
            read.failed_parts += usize::from(letter.part);
            captured.push(record);
        }
        if captured.len() > before {
            read.objects.push(name);
        }
    }
    Ok((captured, read))
}

/// Line `line` (from 1) of dead-letter object `object` as the letter it is and the record it
/// holds: the letter's value, with the key and headers of the Kafka record it came from when
/// it came from one; its origin says who refused it, why, and where the record was read.
///
/// # Errors
/// [`CaptureError::NotALetter`] or [`CaptureError::Base64`], naming the object and line.
pub(super) fn letter_record(
    object_name: &str,
    line: usize,
    text: &[u8],
) -> Result<(DeadLetter, Captured), CaptureError> {
    let letter: DeadLetter = serde_json::from_slice(text).map_err(|source| CaptureError::NotALetter {
        object: object_name.to_owned(),
        line,
        source,
    })?;
    let corrupt = |field: &'static str| CaptureError::Base64 { object: object_name.to_owned(), line, field };
    let bytes = |raw: &RawBytes, field| raw.to_bytes().ok_or_else(|| corrupt(field));
    let value = bytes(&letter.value, "value")?;
    let mut origin = json_object([
        ("step", letter.step.clone().into()),
        ("reason", letter.reason.clone().into()),
        ("plugin_version", letter.plugin_version.clone().into()),
        ("failed_at", letter.failed_at.clone().into()),
        ("part", letter.part.into()),
        ("trapped", letter.trapped.into()),
        ("dead_letter", format!("{object_name}:{line}").into()),
    ]);
    let mut record = SampleRecord { key: None, value, headers: Vec::new() };
    match &letter.origin {
        Origin::Kafka(kafka) => {
            record.key = kafka.key.as_ref().map(|key| bytes(key, "key")).transpose()?;
            for (name, value) in &kafka.headers {
                record.headers.push((name.clone(), bytes(value, "headers")?));
            }
            origin.insert("topic".into(), kafka.topic.clone().into());
            origin.insert("partition".into(), kafka.partition.into());
            origin.insert("offset".into(), kafka.offset.into());
        }
        Origin::JobFile(file) => {
            origin.insert("job_id".into(), file.job_id.to_string().into());
            origin.insert("bucket".into(), file.bucket.clone().into());
            origin.insert("key".into(), file.key.clone().into());
            origin.insert("record".into(), file.record.into());
            if let Some(byte_offset) = file.byte_offset {
                origin.insert("byte_offset".into(), Value::from(byte_offset));
            }
        }
    }
    let place = format!("the dead letter at {object_name}:{line}");
    Ok((letter, Captured { record, origin, place }))
}
