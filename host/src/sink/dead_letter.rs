//! Dead letters: records a plugin rejected, or that were in a batch whose call trapped, kept as
//! JSON lines next to the table so nothing that entered is lost and `sluice sweep` can re-run
//! them once the plugin is fixed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::object_store::join_key;

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

/// One rejected record with everything needed to understand and re-run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<RawBytes>,
    /// The record as it entered (or the failed part of it, see `part`).
    pub value: RawBytes,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, RawBytes)>,
    /// True when `value` is the part of the record the plugin named as failed; the rest of the
    /// record went to the table.
    #[serde(default)]
    pub part: bool,
    pub reason: String,
    /// The pipeline step whose plugin failed it, or `sink` for a row the table refused.
    pub step: String,
    /// `name@version` of that plugin.
    pub plugin_version: String,
    /// Whether the sandbox stopped the call (timeout, memory, trap).
    pub trapped: bool,
    /// RFC 3339, UTC.
    pub failed_at: String,
}

/// The key of a window's dead letters: `{prefix}/{topic}+{partition}+{first_offset:020}.jsonl`.
/// Deterministic like the table's files, so a replay replaces the object instead of adding one.
pub fn dead_letter_key(prefix: &str, topic: &str, partition: i32, first_offset: i64) -> String {
    let topic = crate::sink::parquet::partition::escape_path_name(topic);
    join_key(prefix, &format!("{topic}+{partition}+{first_offset:020}.jsonl"))
}

/// Where `sluice sweep` moves dead letters it has re-run.
pub const SWEPT_DIR: &str = "swept";

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
/// [`DeadLetterError`] naming the first line that is not a dead letter.
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

    fn letter(value: &[u8]) -> DeadLetter {
        DeadLetter {
            topic: "events".into(),
            partition: 2,
            offset: 41,
            key: Some(RawBytes::from_bytes(b"k")),
            value: RawBytes::from_bytes(value),
            headers: vec![("h".into(), RawBytes::from_bytes(&[0xff, 0x00]))],
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
    fn keys_follow_the_window() {
        assert_eq!(dead_letter_key("dl/", "events", 3, 7), "dl/events+3+00000000000000000007.jsonl");
    }
}
