//! Capturing an S3 object as a job reads it: the host's S3 settings, the compression told by
//! the first bytes, and the job reader's split into records in whichever shape the file has.

use sluice_samples::SampleRecord;

use super::{CaptureError, Captured, json_object};
use crate::config::S3Config;
use crate::job::reader::{ReadError, RecordReader};
use crate::object_store::compression::decompressed;
use crate::object_store::{ObjectStore, ObjectStores};

/// Records asked of the reader at a time.
const BATCH: usize = 1000;

/// An object named as `s3://BUCKET/KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ObjectUrl {
    pub bucket: String,
    pub key: String,
}

impl std::fmt::Display for ObjectUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Parses `s3://BUCKET/KEY`, for `--object`.
///
/// # Errors
/// A sentence saying what is wrong with `text`.
pub(super) fn parse_object_url(text: &str) -> Result<ObjectUrl, String> {
    let bad = |problem: &str| format!("`{text}` is not an S3 object URL s3://BUCKET/KEY: {problem}");
    let rest = text.strip_prefix("s3://").ok_or_else(|| bad("it does not start with s3://"))?;
    let (bucket, key) = rest.split_once('/').ok_or_else(|| bad("it names no key"))?;
    // The names a job request accepts.
    let valid_bucket = (1..=255).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && bucket.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if !valid_bucket {
        return Err(bad(&format!("`{bucket}` is not a bucket name")));
    }
    if key.is_empty() {
        return Err(bad("it names no key"));
    }
    Ok(ObjectUrl { bucket: bucket.to_owned(), key: key.to_owned() })
}

/// What was read of the object, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ObjectRead {
    pub compression: &'static str,
    /// `None` for an object without records.
    pub shape: Option<String>,
    /// Numbers, from 1, of the first and last records captured.
    pub records: Option<(u64, u64)>,
}

/// Records `skip + 1` to `skip + limit` of the object, each as the job's reader yields it.
///
/// # Errors
/// [`CaptureError`] when the object is missing or unreadable, or cannot be split as a job
/// would split it.
pub(super) async fn capture(
    s3: &S3Config,
    url: &ObjectUrl,
    max_record_bytes: usize,
    skip: u64,
    limit: usize,
) -> Result<(Vec<Captured>, ObjectRead), CaptureError> {
    let store = ObjectStore::S3(ObjectStores::new(s3.clone()).s3().await.bucket(&url.bucket));
    let body = store.open(&url.key).await?.ok_or_else(|| CaptureError::NoObject(url.to_string()))?;
    let unreadable = |source| CaptureError::Read { object: url.to_string(), source };
    let (compression, body) =
        decompressed(body).await.map_err(|source| unreadable(ReadError::Io { offset: 0, source }))?;
    let mut reader = RecordReader::new(body, max_record_bytes);
    let mut captured = Vec::new();
    let mut number = 0u64;
    let mut first = None;
    'reading: while captured.len() < limit {
        let batch = reader.next_batch(BATCH).await.map_err(unreadable)?;
        if batch.is_empty() {
            break;
        }
        for read in batch {
            number += 1;
            if number <= skip {
                continue;
            }
            first.get_or_insert(number);
            let origin = json_object([
                ("bucket", url.bucket.clone().into()),
                ("key", url.key.clone().into()),
                ("record", number.into()),
                ("byte_offset", read.offset.into()),
            ]);
            let record = SampleRecord { key: None, value: read.bytes, headers: Vec::new() };
            captured.push(Captured { record, origin, place: format!("record {number} of {url}") });
            if captured.len() >= limit {
                break 'reading;
            }
        }
    }
    let read = ObjectRead {
        compression: compression.name(),
        shape: reader.shape().map(|shape| shape.to_string()),
        records: first.map(|first| (first, number)),
    };
    Ok((captured, read))
}
