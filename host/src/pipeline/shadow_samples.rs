//! Where a pipeline keeps the records on which a shadowing candidate differed from the current
//! version: JSON lines under `shadow/<plugin>/<candidate version>/` of its dead-letter location,
//! a place of their own that `sluice sweep` never takes for dead letters.

use futures::future::BoxFuture;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::object_store::{ObjectStore, join_key};
use crate::plugin::{SampleSink, ShadowSample};
use crate::sink::dead_letter::{RawBytes, SHADOW_DIR, now_rfc3339};

/// The shadow samples of one pipeline, in its dead-letter store.
pub struct DeadLetterSamples {
    store: ObjectStore,
    prefix: String,
}

impl DeadLetterSamples {
    /// Samples under `prefix` (the pipeline's dead-letter prefix) of `store`.
    pub fn new(store: ObjectStore, prefix: &str) -> Self {
        DeadLetterSamples { store, prefix: prefix.to_owned() }
    }
}

impl SampleSink for DeadLetterSamples {
    fn keep(
        &self,
        plugin: &str,
        current: &str,
        candidate: &str,
        samples: Vec<ShadowSample>,
    ) -> BoxFuture<'static, ()> {
        let at = now_rfc3339();
        let mut lines = Vec::new();
        for sample in &samples {
            let line = sample_line(plugin, current, candidate, sample, &at);
            // A value of strings and JSON values always serializes.
            if serde_json::to_writer(&mut lines, &line).is_ok() {
                lines.push(b'\n');
            }
        }
        // One object per batch, named so that objects of several members or hosts never collide.
        let name = format!(
            "{SHADOW_DIR}/{}/{}/{}-{}.jsonl",
            key_segment(plugin),
            key_segment(candidate),
            chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
            Uuid::new_v4().simple()
        );
        let key = join_key(&self.prefix, &name);
        let store = self.store.clone();
        let plugin = plugin.to_owned();
        Box::pin(async move {
            if let Err(error) = store.put(&key, lines).await {
                // Samples are an aid; the counts stay right without them.
                tracing::warn!(plugin = %plugin, "cannot keep the shadow samples: {error}");
            }
        })
    }
}

/// One line: the record as dead letters keep it, what differs, and both versions' answers.
fn sample_line(plugin: &str, current: &str, candidate: &str, sample: &ShadowSample, at: &str) -> Value {
    let record = &sample.record;
    let headers: Vec<(String, RawBytes)> =
        record.headers.iter().map(|h| (h.key.clone(), RawBytes::from_bytes(&h.value))).collect();
    let difference = &sample.difference;
    json!({
        "plugin": plugin,
        "current_version": current,
        "candidate_version": candidate,
        "what": difference.what,
        "output": difference.output,
        "record": {
            "key": record.key.as_deref().map(RawBytes::from_bytes),
            "value": RawBytes::from_bytes(&record.value),
            "headers": headers,
        },
        "current": difference.old,
        "candidate": difference.new,
        "at": at,
    })
}

/// `text` as one key segment: characters other than letters, digits, `.`, `_`, `+` and `-`
/// become `_`, and no segment is `.` or `..`.
fn key_segment(text: &str) -> String {
    let segment: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-') { c } else { '_' })
        .collect();
    if segment.is_empty() || segment.chars().all(|c| c == '.') { "_".to_owned() } else { segment }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::RecordIn;
    use crate::plugin::compare::Difference;

    #[test]
    fn versions_become_safe_key_segments() {
        assert_eq!(key_segment("1.0.0-trapping"), "1.0.0-trapping");
        assert_eq!(key_segment("2.0/../x y"), "2.0_.._x_y");
        assert_eq!(key_segment(".."), "_");
        assert_eq!(key_segment(""), "_");
    }

    #[tokio::test]
    async fn samples_are_kept_as_json_lines_under_the_shadow_prefix() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ObjectStore::Local(crate::object_store::LocalDir::new(dir.path()));
        let samples = DeadLetterSamples::new(store.clone(), "letters");
        let sample = ShadowSample {
            record: RecordIn { key: Some(b"k".to_vec()), value: b"{\"id\":1}".to_vec(), headers: Vec::new() },
            difference: Difference {
                record: 0,
                output: Some("rows".into()),
                what: "row changed",
                old: Some(json!({"id": 1})),
                new: Some(json!({"id": 2})),
                input: "{\"id\":1}".into(),
            },
        };
        samples.keep("p", "1.0.0", "2.0.0", vec![sample]).await;
        let listed = store.list("letters/").await.expect("list");
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert!(listed[0].key.starts_with("letters/shadow/p/2.0.0/"), "{}", listed[0].key);
        let body = store.get(&listed[0].key).await.expect("get").expect("object");
        let line: Value = serde_json::from_slice(body.trim_ascii_end()).expect("one JSON line");
        assert_eq!(line["record"]["value"], json!("{\"id\":1}"));
        assert_eq!(
            (line["current"].clone(), line["candidate"].clone()),
            (json!({"id": 1}), json!({"id": 2}))
        );
    }
}
