//! The `jsonl` sink: each window's rows as one object of JSON lines, one compact object per row
//! (the form a `kafka` sink produces), in S3 or a local directory, gzipped if asked.
//!
//! Objects are named after the window (`{prefix}/{topic}+{partition}+{first_offset}.jsonl`,
//! see [`crate::sink::window_stem`]), so a replay after a crash replaces a window's object
//! instead of adding a second one, and what `sluice sweep` writes carries its own suffix. It is
//! for the readers Parquet does not suit: `jq`, log shippers, a warehouse's JSON loader.

pub mod window;

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::StoreLocation;
use crate::config::defaults::{default_rotate_bytes, default_rotate_ms, default_rotate_records};
use crate::sink::windowed::{BuildContext, Rotation, WindowedSink, WindowedSinkError};
use window::JsonlSink;

/// `kind = "jsonl"`: where the objects go (`bucket` and `prefix` for S3, or `dir`), whether
/// they are gzipped, and when a window closes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "JsonlFields")]
pub struct JsonlSinkSettings {
    pub location: StoreLocation,
    pub gzip: bool,
    pub rotate_records: usize,
    pub rotate_bytes: usize,
    pub rotate_ms: u64,
}

/// The keys as written; [`JsonlSinkSettings`] is made from them once the store is one of the two.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonlFields {
    bucket: Option<String>,
    prefix: Option<String>,
    dir: Option<PathBuf>,
    #[serde(default)]
    gzip: bool,
    #[serde(default = "default_rotate_records")]
    rotate_records: usize,
    #[serde(default = "default_rotate_bytes")]
    rotate_bytes: usize,
    #[serde(default = "default_rotate_ms")]
    rotate_ms: u64,
}

impl TryFrom<JsonlFields> for JsonlSinkSettings {
    type Error = String;

    fn try_from(fields: JsonlFields) -> Result<Self, String> {
        let location = match (fields.bucket, fields.prefix, fields.dir) {
            (Some(bucket), Some(prefix), None) => StoreLocation::S3 { bucket, prefix },
            (None, None, Some(dir)) => StoreLocation::Local { dir },
            _ => {
                return Err("a `jsonl` sink writes to S3 (`bucket` and `prefix`) or to a directory \
                            (`dir`): give one of the two"
                    .to_owned());
            }
        };
        Ok(JsonlSinkSettings {
            location,
            gzip: fields.gzip,
            rotate_records: fields.rotate_records,
            rotate_bytes: fields.rotate_bytes,
            rotate_ms: fields.rotate_ms,
        })
    }
}

impl JsonlSinkSettings {
    /// When its windows close.
    pub fn rotation(&self) -> Rotation {
        Rotation {
            records: self.rotate_records,
            bytes: self.rotate_bytes,
            age: std::time::Duration::from_millis(self.rotate_ms),
        }
    }
}

/// The sink for `from`, writing to its store.
///
/// # Errors
/// [`WindowedSinkError::Store`] when the store cannot be reached.
pub async fn build_windowed(
    from: &str,
    settings: &JsonlSinkSettings,
    context: &BuildContext<'_>,
) -> Result<Box<dyn WindowedSink>, WindowedSinkError> {
    let store = context
        .stores
        .store(&settings.location)
        .await
        .map_err(|source| WindowedSinkError::Store { from: from.to_owned(), source })?;
    Ok(Box::new(JsonlSink::new(from, settings, store)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Result<JsonlSinkSettings, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn the_store_is_s3_or_a_directory() {
        let s3 = settings("bucket = \"b\"\nprefix = \"p\"\ngzip = true").expect("s3");
        assert_eq!(s3.location, StoreLocation::S3 { bucket: "b".into(), prefix: "p".into() });
        assert!(s3.gzip);
        let local = settings("dir = \"/tmp/rows\"").expect("local");
        assert_eq!(local.location, StoreLocation::Local { dir: "/tmp/rows".into() });
        assert!(!local.gzip);
        assert_eq!(local.rotate_records, default_rotate_records());
    }

    #[test]
    fn both_stores_or_neither_is_refused_by_name() {
        for text in ["bucket = \"b\"\nprefix = \"p\"\ndir = \"/tmp\"", "gzip = true", "bucket = \"b\""] {
            let error = settings(text).expect_err(text).to_string();
            assert!(error.contains("`bucket` and `prefix`") && error.contains("`dir`"), "{error}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(settings("dir = \"/tmp\"\npartition_by = [\"dt\"]").is_err());
    }
}
