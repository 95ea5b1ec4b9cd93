//! What sluice's fuzz tests share: how many cases they run, the inputs they make to break a
//! parser, and the checks every plugin's batch result must pass.
//!
//! The fuzz tests themselves sit next to the code they feed (`mod fuzz` beside the parser),
//! as property tests: they run on stable Rust inside `cargo test`, with a small budget by
//! default so CI stays fast. `bench/fuzz.sh` runs exactly these tests with a large budget
//! ([`CASES_VAR`]) and reports what it ran.
//!
//! - this module: the budget ([`config`]), bytes that print readably ([`Bytes`]), arbitrary
//!   bytes biased towards the ones JSON splitters care about ([`json_ish_bytes`]), and a valid
//!   input corrupted the ways files and requests break ([`corrupted`]);
//! - [`json`]: JSON values generated with a parser's own field names, and a value with one
//!   node replaced or removed;
//! - [`plugin`]: batches for a plugin's `transform` made from its `samples/`, and the
//!   contract every batch result keeps (every input accounted for, whole failures alone).

pub mod json;
pub mod plugin;

use std::fmt;
use std::ops::Deref;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// The environment variable holding how many cases each fuzz test runs.
pub const CASES_VAR: &str = "SLUICE_FUZZ_CASES";

/// Cases per fuzz test when [`CASES_VAR`] is unset: enough to catch a regression in CI, cheap
/// enough to run on every test run.
pub const DEFAULT_CASES: u32 = 256;

/// The proptest settings of every fuzz test: [`cases`] cases, and no regression files written
/// into the source tree (a failing input is kept as a plain `#[test]` beside the fuzz test).
///
/// # Panics
/// When [`CASES_VAR`] is set but is not a whole number.
pub fn config() -> Config {
    Config { cases: cases(), failure_persistence: None, ..Config::default() }
}

/// Cases per fuzz test: [`CASES_VAR`], or [`DEFAULT_CASES`] when it is unset.
///
/// # Panics
/// When [`CASES_VAR`] is set but is not a whole number, so a budget typed wrong is not run
/// silently as the default.
pub fn cases() -> u32 {
    match std::env::var(CASES_VAR) {
        Err(_) => DEFAULT_CASES,
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{CASES_VAR} must be a whole number of cases, not {value:?}")),
    }
}

/// Input bytes that print as an escaped byte string (`b"[{\"a\":1"`), so a failing case can be
/// read and pasted into a regression test.
#[derive(Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("b\"")?;
        for &byte in &self.0 {
            write!(formatter, "{}", std::ascii::escape_default(byte))?;
        }
        formatter.write_str("\"")
    }
}

/// Bytes that JSON splitters and parsers treat specially: brackets, quotes, escapes, separators,
/// line endings, whitespace, the start of a byte order mark and of a multi-byte character.
const JSON_BYTES: &[u8] = b"{}[]\",:\\\n\r\t 0-1.eEtrufalsn\xEF\xBB\xBF\xC3\xA9";

/// One byte, half the time one of [`JSON_BYTES`].
pub fn json_ish_byte() -> impl Strategy<Value = u8> {
    prop_oneof![proptest::sample::select(JSON_BYTES), any::<u8>()]
}

/// Up to `max_len` bytes, half of them from the bytes JSON parsers treat specially, so arbitrary
/// input reaches past the first byte of a parser more often than uniform noise does.
pub fn json_ish_bytes(max_len: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(json_ish_byte(), 0..=max_len).prop_map(Bytes)
}

/// How an input was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// Cut off after this many bytes, as by a dropped connection or a partial upload.
    Truncated(usize),
    /// The byte at this position replaced.
    Replaced(usize, u8),
    /// A byte inserted before this position.
    Inserted(usize, u8),
    /// The bytes in this range removed.
    Removed(usize, usize),
    /// The bytes in this range written twice.
    Repeated(usize, usize),
}

impl Corruption {
    /// `input` broken this way.
    pub fn apply(self, input: &[u8]) -> Vec<u8> {
        let mut bytes = input.to_vec();
        match self {
            Corruption::Truncated(at) => bytes.truncate(at),
            Corruption::Replaced(at, byte) => {
                if let Some(slot) = bytes.get_mut(at) {
                    *slot = byte;
                }
            }
            Corruption::Inserted(at, byte) => bytes.insert(at.min(bytes.len()), byte),
            Corruption::Removed(start, end) => {
                bytes.drain(start.min(bytes.len())..end.min(bytes.len()));
            }
            Corruption::Repeated(start, end) => {
                let again = input[start.min(input.len())..end.min(input.len())].to_vec();
                let at = end.min(bytes.len());
                bytes.splice(at..at, again);
            }
        }
        bytes
    }
}

/// A corruption of an input of `len` bytes; every position from the start to the end is as
/// likely as any other.
pub fn corruption(len: usize) -> impl Strategy<Value = Corruption> {
    let position = any::<Index>().prop_map(move |index| index.index(len + 1));
    let range = (any::<Index>(), any::<Index>()).prop_map(move |(a, b)| {
        let (a, b) = (a.index(len + 1), b.index(len + 1));
        (a.min(b), a.max(b))
    });
    prop_oneof![
        position.clone().prop_map(Corruption::Truncated),
        (position.clone(), json_ish_byte()).prop_map(|(at, byte)| Corruption::Replaced(at, byte)),
        (position, json_ish_byte()).prop_map(|(at, byte)| Corruption::Inserted(at, byte)),
        range.clone().prop_map(|(start, end)| Corruption::Removed(start, end)),
        range.prop_map(|(start, end)| Corruption::Repeated(start, end)),
    ]
}

/// `input` broken one way (see [`Corruption`]), with how.
pub fn corrupted(input: Vec<u8>) -> impl Strategy<Value = (Bytes, Corruption)> {
    corruption(input.len()).prop_map(move |how| (Bytes(how.apply(&input)), how))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruptions_break_an_input_where_they_say() {
        let input = b"[1,2]";
        assert_eq!(Corruption::Truncated(2).apply(input), b"[1");
        assert_eq!(Corruption::Replaced(1, b'x').apply(input), b"[x,2]");
        assert_eq!(Corruption::Replaced(9, b'x').apply(input), input);
        assert_eq!(Corruption::Inserted(5, b' ').apply(input), b"[1,2] ");
        assert_eq!(Corruption::Removed(1, 3).apply(input), b"[2]");
        assert_eq!(Corruption::Repeated(1, 3).apply(input), b"[1,1,2]");
    }

    #[test]
    fn bytes_print_as_an_escaped_byte_string() {
        assert_eq!(format!("{:?}", Bytes(b"[\"a\"\n\xEF".to_vec())), r#"b"[\"a\"\n\xef""#);
    }
}
