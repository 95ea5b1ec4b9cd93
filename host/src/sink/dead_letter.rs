//! Dead letters: records a plugin rejected, or that were in a batch whose call trapped, kept as
//! JSON lines next to the table so nothing that entered is lost and `sluice sweep` can re-run
//! them once the plugin is fixed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use uuid::Uuid;

use crate::object_store::join_key;
use crate::pipeline::ChainFailure;

/// Bytes as JSON: the text itself when it is UTF-8 (readable in any tool), base64 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RawBytes {
    Text(String),
    Base64 { base64: String },
}

/// Why a dead-letter line cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("line {line}: not a dead letter: {source}")]
    Line {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("line {line}: `{field}` is not valid base64")]
    Base64 { line: usize, field: &'static str },
    #[error("line {line}: not a Kafka record's dead letter (it names no topic, partition and offset)")]
    NotKafka { line: usize },
}

impl RawBytes {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => RawBytes::Text(text.to_owned()),
            Err(_) => RawBytes::Base64 { base64: BASE64.encode(bytes) },
        }
    }

    /// The original bytes; `None` when the base64 form is corrupt.
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        match self {
            RawBytes::Text(text) => Some(text.as_bytes().to_vec()),
            RawBytes::Base64 { base64 } => BASE64.decode(base64).ok(),
        }
    }
}

/// One rejected record with everything needed to understand and re-run it: where it was read,
/// the record (or the failed part of it), and who refused it why. The connector, `sluice
/// sweep` and the jobs write and read this one form; only the origin differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Where the record was read, as fields of the letter itself.
    #[serde(flatten)]
    pub origin: Origin,
    /// The record as it entered (or the failed part of it, see `part`).
    pub value: RawBytes,
    /// True when `value` is the part of the record the plugin named as failed; the rest of the
    /// record went on to the tables.
    #[serde(default)]
    pub part: bool,
    pub reason: String,
    /// The pipeline step whose plugin failed it, or `sink <output>` for a row a table refused.
    pub step: String,
    /// `name@version` of that plugin.
    pub plugin_version: String,
    /// Whether the sandbox stopped the call (timeout, memory, trap).
    pub trapped: bool,
    /// RFC 3339, UTC.
    pub failed_at: String,
}

/// Where a dead letter's record was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Origin {
    Kafka(KafkaOrigin),
    JobFile(JobFileOrigin),
}

/// A Kafka record: its coordinates, key and headers (the value is the letter's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaOrigin {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<RawBytes>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, RawBytes)>,
}

/// A record of the file a job read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFileOrigin {
    pub job_id: Uuid,
    pub bucket: String,
    /// The object's key.
    pub key: String,
    pub etag: String,
    /// The record's position in the file it was first read from, from 1.
    pub record: u64,
    /// Where the record starts in that file, in bytes (absent in letters of older builds).
    #[serde(default)]
    pub byte_offset: Option<u64>,
}

impl DeadLetter {
    /// The letter of a record read at `origin` whose value was `value`, as `failure` refused
    /// it: the failed part instead of the whole value when the plugin named one. `reason`
    /// overrides the failure's (a job puts the record's place in front).
    pub fn new(origin: Origin, value: &[u8], failure: &ChainFailure, reason: Option<String>) -> Self {
        let (value, part) = match &failure.part {
            Some(part) => (part.as_slice(), true),
            None => (value, false),
        };
        DeadLetter {
            origin,
            value: RawBytes::from_bytes(value),
            part,
            reason: reason.unwrap_or_else(|| failure.reason.clone()),
            step: failure.step.clone(),
            plugin_version: failure.plugin_version.to_string(),
            trapped: failure.trapped,
            failed_at: now_rfc3339(),
        }
    }

    /// The letter as it stays in the dead letters after failing again, with this attempt's
    /// part, reason and plugin version.
    #[must_use]
    pub fn failed_again(&self, failure: &ChainFailure) -> Self {
        let mut again = self.clone();
        if let Some(part) = &failure.part {
            again.value = RawBytes::from_bytes(part);
            again.part = true;
        }
        again.reason.clone_from(&failure.reason);
        again.step.clone_from(&failure.step);
        again.plugin_version = failure.plugin_version.to_string();
        again.trapped = failure.trapped;
        again.failed_at = now_rfc3339();
        again
    }

    /// The Kafka coordinates, when the record was read from Kafka.
    pub fn kafka(&self) -> Option<&KafkaOrigin> {
        match &self.origin {
            Origin::Kafka(kafka) => Some(kafka),
            Origin::JobFile(_) => None,
        }
    }

    /// One JSON line of a dead-letter object, or `None` when it is not a letter.
    pub fn parse_line(line: &[u8]) -> Option<Self> {
        serde_json::from_slice(line).ok()
    }
}

/// The key of a window's dead letters: `{prefix}/{topic}+{partition}+{first_offset:020}.jsonl`.
/// Deterministic like the table's files, so a replay replaces the object instead of adding one.
pub fn dead_letter_key(prefix: &str, topic: &str, partition: i32, first_offset: i64) -> String {
    let stem = crate::sink::window_stem::window_stem(topic, partition, first_offset);
    join_key(prefix, &format!("{stem}.jsonl"))
}

/// Where `sluice sweep` moves dead letters it has re-run.
pub const SWEPT_DIR: &str = "swept";

/// Where shadowing keeps samples of the records on which a candidate differed: JSON lines
/// beside the dead letters that are not dead letters, so no sweep or capture reads them.
pub const SHADOW_DIR: &str = "shadow";

/// Whether `key`, under dead-letter prefix `prefix`, is a dead-letter file still to sweep: not
/// one already swept, nor a shadow sample.
pub fn is_pending_letter(prefix: &str, key: &str) -> bool {
    let under = |dir: &str| key.starts_with(&join_key(prefix, &format!("{dir}/")));
    is_letter_file(key) && !under(SWEPT_DIR) && !under(SHADOW_DIR)
}

/// The names of dead-letter files: JSON lines, as sluice writes them, or compressed by whoever
/// archived them (read by their content, whatever the name says).
const LETTER_FILE_SUFFIXES: [&str; 3] = [".jsonl.gz", ".jsonl.zst", ".jsonl"];

/// Whether `key` names a dead-letter file `sluice sweep` reads.
pub fn is_letter_file(key: &str) -> bool {
    LETTER_FILE_SUFFIXES.iter().any(|suffix| key.ends_with(suffix))
}

/// `name` without its dead-letter file suffix.
pub fn letter_file_stem(name: &str) -> &str {
    LETTER_FILE_SUFFIXES.iter().find_map(|suffix| name.strip_suffix(suffix)).unwrap_or(name)
}

/// JSON lines, one dead letter per line.
pub fn encode_lines(letters: &[DeadLetter]) -> Vec<u8> {
    let mut out = Vec::new();
    for letter in letters {
        // A struct of strings and numbers always serializes.
        if serde_json::to_writer(&mut out, letter).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

/// Reads JSON lines written by [`encode_lines`]; blank lines are skipped.
///
/// # Errors
/// [`DeadLetterError`] naming the first line that is not a Kafka record's dead letter.
pub fn parse_lines(bytes: &[u8]) -> Result<Vec<DeadLetter>, DeadLetterError> {
    let mut letters = Vec::new();
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let letter: DeadLetter = serde_json::from_slice(line)
            .map_err(|source| DeadLetterError::Line { line: index + 1, source })?;
        if letter.value.to_bytes().is_none() {
            return Err(DeadLetterError::Base64 { line: index + 1, field: "value" });
        }
        if letter.kafka().is_none() {
            return Err(DeadLetterError::NotKafka { line: index + 1 });
        }
        letters.push(letter);
    }
    Ok(letters)
}

/// Now, as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_files_are_json_lines_plain_or_compressed() {
        assert!(
            is_letter_file("p/000000000003.jsonl")
                && is_letter_file("p/a.jsonl.gz")
                && is_letter_file("a.jsonl.zst")
        );
        assert!(!is_letter_file("p/a.json") && !is_letter_file("p/a.gz") && !is_letter_file("p/_marker"));
        assert_eq!(letter_file_stem("a.jsonl.gz"), "a");
        assert_eq!(letter_file_stem("a.jsonl"), "a");
        assert_eq!(letter_file_stem("a.parquet"), "a.parquet");
    }

    fn letter(value: &[u8]) -> DeadLetter {
        DeadLetter {
            origin: Origin::Kafka(KafkaOrigin {
                topic: "events".into(),
                partition: 2,
                offset: 41,
                key: Some(RawBytes::from_bytes(b"k")),
                headers: vec![("h".into(), RawBytes::from_bytes(&[0xff, 0x00]))],
            }),
            value: RawBytes::from_bytes(value),
            part: false,
            reason: "email: missing".into(),
            step: "normalize".into(),
            plugin_version: "normalize@1.0.0".into(),
            trapped: false,
            failed_at: now_rfc3339(),
        }
    }

    #[test]
    fn text_stays_readable_and_binary_round_trips() {
        let letters = vec![letter(br#"[{"event":"open"}]"#), letter(&[0xc3, 0x28, 0x00])];
        let lines = encode_lines(&letters);
        let text = String::from_utf8(lines.clone()).expect("JSON lines are UTF-8");
        assert!(text.contains(r#""value":"[{\"event\":\"open\"}]""#), "{text}");
        assert!(text.contains(r#""value":{"base64":"wygA"}"#), "{text}");
        let parsed = parse_lines(&lines).expect("parse");
        assert_eq!(parsed, letters);
        assert_eq!(parsed[1].value.to_bytes(), Some(vec![0xc3, 0x28, 0x00]));
    }

    #[test]
    fn a_broken_line_is_named() {
        let mut lines = encode_lines(&[letter(b"x")]);
        lines.extend_from_slice(b"\nnot json\n");
        let error = parse_lines(&lines).expect_err("line 3 is broken");
        assert!(error.to_string().starts_with("line 3:"), "{error}");
    }

    #[test]
    fn swept_letters_and_shadow_samples_are_not_pending() {
        assert!(is_pending_letter("dl", "dl/events+0+00000000000000000001.jsonl"));
        assert!(!is_pending_letter("dl/", "dl/swept/events+0+00000000000000000001.jsonl"));
        assert!(!is_pending_letter("dl", "dl/shadow/p/2.0.0/x.jsonl"));
        assert!(is_pending_letter("", "events+0+1.jsonl") && !is_pending_letter("", "shadow/p/1/x.jsonl"));
    }

    #[test]
    fn keys_follow_the_window() {
        assert_eq!(dead_letter_key("dl/", "events", 3, 7), "dl/events+3+00000000000000000007.jsonl");
    }
}
