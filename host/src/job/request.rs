//! A load request: which object, and whether it may be loaded.
//!
//! The checks are the original API's: both parameters present and non-empty, the bucket
//! exists, and the key names exactly one object (a key that is also the prefix of other
//! objects is refused as ambiguous, as the original's listing did).

use crate::object_store::{ObjectStore, S3Client, StoreError};

use super::records::ObjectVersion;

/// The longest key S3 accepts, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// What a caller asks to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    pub bucket: String,
    pub key: String,
}

/// Why a request is refused; every variant but [`RequestError::Storage`] is the caller's to fix.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("`{field}` is missing or empty")]
    Missing { field: &'static str },
    #[error("`{field}` must be a string")]
    NotAString { field: &'static str },
    #[error("`{0}` is not a valid S3 bucket name")]
    InvalidBucket(String),
    #[error("`key` is longer than the {MAX_KEY_BYTES} bytes S3 allows")]
    KeyTooLong,
    #[error("bucket `{0}` does not exist")]
    NoBucket(String),
    #[error("key not found: there is no object s3://{bucket}/{key}")]
    KeyNotFound { bucket: String, key: String },
    #[error(
        "key `{key}` matches {count} objects in bucket `{bucket}` (it is also the prefix of others); \
         name exactly one object"
    )]
    Ambiguous { bucket: String, key: String, count: usize },
    #[error("cannot check the object: {0}")]
    Storage(#[from] StoreError),
}

impl RequestError {
    /// The request field the problem is about, for the error body.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            RequestError::Missing { field } | RequestError::NotAString { field } => Some(field),
            RequestError::InvalidBucket(_) | RequestError::NoBucket(_) => Some("bucket"),
            RequestError::KeyTooLong | RequestError::KeyNotFound { .. } | RequestError::Ambiguous { .. } => {
                Some("key")
            }
            RequestError::Storage(_) => None,
        }
    }
}

impl JobRequest {
    /// The request from its two parameters as found (JSON values from a body, or query
    /// strings as JSON strings).
    ///
    /// # Errors
    /// [`RequestError::Missing`] for an absent, null or empty parameter,
    /// [`RequestError::NotAString`] for another type, and the name checks.
    pub fn from_values(
        bucket: Option<&serde_json::Value>,
        key: Option<&serde_json::Value>,
    ) -> Result<Self, RequestError> {
        let bucket = required("bucket", bucket)?;
        let key = required("key", key)?;
        if !valid_bucket_name(&bucket) {
            return Err(RequestError::InvalidBucket(bucket));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(RequestError::KeyTooLong);
        }
        Ok(JobRequest { bucket, key })
    }

    /// Checks the bucket and the key against S3 and returns the object's current version.
    ///
    /// # Errors
    /// [`RequestError::NoBucket`], [`RequestError::KeyNotFound`], [`RequestError::Ambiguous`],
    /// or [`RequestError::Storage`] when S3 cannot be asked.
    pub async fn resolve(&self, s3: &S3Client) -> Result<ObjectVersion, RequestError> {
        let bucket = s3.bucket(&self.bucket);
        if !bucket.exists().await? {
            return Err(RequestError::NoBucket(self.bucket.clone()));
        }
        let store = ObjectStore::S3(bucket);
        let not_found = || RequestError::KeyNotFound { bucket: self.bucket.clone(), key: self.key.clone() };
        let matching = store.list(&self.key).await?;
        if matching.len() > 1 {
            return Err(RequestError::Ambiguous {
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                count: matching.len(),
            });
        }
        if !matching.iter().any(|object| object.key == self.key) {
            return Err(not_found());
        }
        // The listing's ETag can differ in form from the one GET answers with; take HEAD's,
        // which is what the job compares against when it starts.
        let meta = store.head(&self.key).await?.ok_or_else(not_found)?;
        Ok(ObjectVersion {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            etag: meta.etag,
            size: meta.size,
        })
    }
}

fn required(field: &'static str, value: Option<&serde_json::Value>) -> Result<String, RequestError> {
    match value {
        None | Some(serde_json::Value::Null) => Err(RequestError::Missing { field }),
        Some(serde_json::Value::String(text)) if text.trim().is_empty() => {
            Err(RequestError::Missing { field })
        }
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(RequestError::NotAString { field }),
    }
}

/// S3's naming rules, loosened to what older regions and S3-compatible servers accept
/// (uppercase and `_`), so a bucket that exists is never refused by name.
fn valid_bucket_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(bucket: serde_json::Value, key: serde_json::Value) -> Result<JobRequest, RequestError> {
        JobRequest::from_values(Some(&bucket), Some(&key))
    }

    #[test]
    fn both_parameters_are_required_and_non_empty() {
        let missing = JobRequest::from_values(None, Some(&json!("k"))).expect_err("no bucket");
        assert_eq!(
            (missing.to_string().as_str(), missing.field()),
            ("`bucket` is missing or empty", Some("bucket"))
        );
        let empty = request(json!("b"), json!(" ")).expect_err("empty key");
        assert_eq!(empty.field(), Some("key"));
        let null = request(json!(null), json!("k")).expect_err("null bucket");
        assert!(matches!(null, RequestError::Missing { field: "bucket" }));
        let number = request(json!("b"), json!(7)).expect_err("number key");
        assert_eq!(number.to_string(), "`key` must be a string");
    }

    #[test]
    fn bucket_names_are_checked_before_s3_is_asked() {
        assert!(matches!(request(json!("../etc"), json!("k")), Err(RequestError::InvalidBucket(_))));
        assert!(matches!(request(json!("a b"), json!("k")), Err(RequestError::InvalidBucket(_))));
        assert_eq!(
            request(json!("my-bucket.v2"), json!("dir/file.jsonl")).expect("valid"),
            JobRequest { bucket: "my-bucket.v2".into(), key: "dir/file.jsonl".into() }
        );
    }

    #[test]
    fn key_not_found_says_so_first() {
        let error = RequestError::KeyNotFound { bucket: "b".into(), key: "k".into() };
        assert!(error.to_string().starts_with("key not found"), "{error}");
    }
}
