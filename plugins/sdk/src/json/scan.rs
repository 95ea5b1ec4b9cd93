//! One pass over JSON text: every value as a borrowed span, objects member by member.
//!
//! A plugin that reads a record into columns needs each member's name and the text of its
//! value, and sometimes the text of a whole element (to keep it in a json column or to
//! dead-letter it alone). serde_json gives either the members (a map of raw values) or the
//! element's text (a raw value), so reading both took two parses of every element. The
//! [`Scanner`] walks the text once: [`Scanner::value`] returns the span of any value,
//! [`Scanner::begin_array`]/[`Scanner::next_element`] and
//! [`Scanner::begin_object`]/[`Scanner::next_key`] step into arrays and objects, and
//! [`Scanner::position`] tells where an element started and ended.
//!
//! It accepts exactly the JSON serde_json accepts (RFC 8259: no comments, no trailing commas,
//! no leading zeros, no control characters in strings), and checks nothing else: decoding a
//! string's escapes and a number's value is left to whoever reads that value. A [`ScanError`]
//! only says where the text stopped being JSON; a caller that shows a reason to a user parses
//! the same text with serde_json for its message, which costs nothing on valid input.
//!
//! The text must already be a `str`, so UTF-8 is checked once for the whole record. Strings are
//! searched eight bytes at a time for a quote, a backslash or a control character, which keeps
//! the loop short in WebAssembly too, where every loop turn also checks the call's deadline.

/// The kind of a JSON value, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

/// One value's text, as it appears in the input (trimmed), and what was seen inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span<'a> {
    text: &'a str,
    kind: Kind,
    /// A string holds a backslash escape.
    escaped: bool,
    /// An array or object holds whitespace outside its strings.
    spaced: bool,
}

impl<'a> Span<'a> {
    /// The value's text, trimmed: for a string, its quotes included.
    #[inline]
    pub fn text(&self) -> &'a str {
        self.text
    }

    #[inline]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// For a string: its content when it holds no escape (nearly always), else `None`.
    #[inline]
    pub fn plain_str(&self) -> Option<&'a str> {
        if self.kind != Kind::String || self.escaped {
            return None;
        }
        self.text.get(1..self.text.len() - 1)
    }

    /// For a string: whether it holds a backslash escape, so that its content differs from
    /// its text.
    #[inline]
    pub fn is_escaped(&self) -> bool {
        self.escaped
    }

    /// For an array or an object: whether it holds whitespace outside strings, so that its
    /// compact form differs from its text.
    #[inline]
    pub fn is_spaced(&self) -> bool {
        self.spaced
    }
}

/// Where the text stopped being JSON (a byte offset); serde_json tells why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanError {
    pub at: usize,
}

/// Reads JSON text front to back; see the module documentation.
#[derive(Debug)]
pub struct Scanner<'a> {
    text: &'a str,
    at: usize,
    /// How many runs of whitespace were skipped so far: a value whose count did not change
    /// between its first and last byte holds none.
    whitespace_runs: usize,
    /// Open arrays (`[`) and objects (`{`) while a nested value is skipped; reused.
    open: Vec<u8>,
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Self {
        Scanner { text, at: 0, whitespace_runs: 0, open: Vec::new() }
    }

    /// The offset of the next byte to read: after [`Scanner::peek`], where the next value starts.
    #[inline]
    pub fn position(&self) -> usize {
        self.at
    }

    /// The text between two positions.
    #[inline]
    pub fn slice(&self, start: usize, end: usize) -> &'a str {
        self.text.get(start..end).unwrap_or_default()
    }

    /// The count of whitespace runs skipped so far; equal counts at two positions mean no
    /// whitespace between them.
    #[inline]
    pub fn whitespace_runs(&self) -> usize {
        self.whitespace_runs
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        let bytes = self.bytes();
        let start = self.at;
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(self.at) {
            self.at += 1;
        }
        if self.at != start {
            self.whitespace_runs += 1;
        }
    }

    /// The kind of the next value, after skipping whitespace; `None` at the end of the text
    /// or before a byte that starts no value.
    #[inline]
    pub fn peek(&mut self) -> Option<Kind> {
        self.skip_whitespace();
        Some(match self.bytes().get(self.at)? {
            b'"' => Kind::String,
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b't' | b'f' => Kind::Bool,
            b'n' => Kind::Null,
            b'-' | b'0'..=b'9' => Kind::Number,
            _ => return None,
        })
    }

    fn error(&self) -> ScanError {
        ScanError { at: self.at }
    }

    fn expect(&mut self, byte: u8) -> Result<(), ScanError> {
        self.skip_whitespace();
        if self.bytes().get(self.at) == Some(&byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// Reads one whole value.
    ///
    /// # Errors
    /// [`ScanError`] where the value stops being JSON.
    #[inline]
    pub fn value(&mut self) -> Result<Span<'a>, ScanError> {
        let kind = self.peek().ok_or_else(|| self.error())?;
        let start = self.at;
        let mut escaped = false;
        let mut spaced = false;
        match kind {
            Kind::String => escaped = self.string()?,
            Kind::Number => self.number()?,
            Kind::Bool | Kind::Null => self.word()?,
            Kind::Array | Kind::Object => {
                let runs = self.whitespace_runs;
                self.container()?;
                spaced = self.whitespace_runs != runs;
            }
        }
        Ok(Span { text: self.slice(start, self.at), kind, escaped, spaced })
    }

    /// Enters the array that comes next.
    ///
    /// # Errors
    /// [`ScanError`] when the next value is not an array.
    #[inline]
    pub fn begin_array(&mut self) -> Result<(), ScanError> {
        self.expect(b'[')
    }

    /// Moves to the next element of the array entered last: `true` when one follows (read it
    /// with [`Scanner::value`] or step into it), `false` after the closing bracket. `first` is
    /// true for the call right after [`Scanner::begin_array`].
    ///
    /// # Errors
    /// [`ScanError`] when neither a comma nor the closing bracket comes where one must.
    #[inline]
    pub fn next_element(&mut self, first: bool) -> Result<bool, ScanError> {
        self.skip_whitespace();
        match self.bytes().get(self.at) {
            Some(b']') => {
                self.at += 1;
                Ok(false)
            }
            Some(b',') if !first => {
                self.at += 1;
                Ok(true)
            }
            Some(_) if first => Ok(true),
            _ => Err(self.error()),
        }
    }

    /// Enters the object that comes next.
    ///
    /// # Errors
    /// [`ScanError`] when the next value is not an object.
    #[inline]
    pub fn begin_object(&mut self) -> Result<(), ScanError> {
        self.expect(b'{')
    }

    /// Reads the next member's name and its colon, so that its value comes next; `None` after
    /// the closing brace. `first` is true for the call right after [`Scanner::begin_object`].
    ///
    /// # Errors
    /// [`ScanError`] when the object's syntax is broken there.
    #[inline]
    pub fn next_key(&mut self, first: bool) -> Result<Option<Span<'a>>, ScanError> {
        self.skip_whitespace();
        match self.bytes().get(self.at) {
            Some(b'}') => {
                self.at += 1;
                return Ok(None);
            }
            Some(b',') if !first => {
                self.at += 1;
                self.skip_whitespace();
            }
            Some(b'"') if first => {}
            _ => return Err(self.error()),
        }
        if self.bytes().get(self.at) != Some(&b'"') {
            return Err(self.error());
        }
        let start = self.at;
        let escaped = self.string()?;
        let key = Span { text: self.slice(start, self.at), kind: Kind::String, escaped, spaced: false };
        self.expect(b':')?;
        Ok(Some(key))
    }

    /// Checks that only whitespace is left.
    ///
    /// # Errors
    /// [`ScanError`] at the first byte after the value that is not whitespace.
    #[inline]
    pub fn finish(&mut self) -> Result<(), ScanError> {
        self.skip_whitespace();
        if self.at == self.text.len() { Ok(()) } else { Err(self.error()) }
    }

    /// Reads the string whose opening quote is at the current position; whether it holds an
    /// escape.
    #[inline]
    fn string(&mut self) -> Result<bool, ScanError> {
        let bytes = self.bytes();
        // Most strings (member names, ids, short values) end within eight bytes of their
        // opening quote: one word is looked at here, without a call.
        if let Some(chunk) = bytes.get(self.at + 1..self.at + 9) {
            let found = special_bytes(chunk);
            if found != 0 {
                let at = self.at + 1 + (found.trailing_zeros() / 8) as usize;
                if bytes[at] == b'"' {
                    self.at = at + 1;
                    return Ok(false);
                }
            }
        }
        self.long_string()
    }

    /// [`Scanner::string`] for strings that need more than one word or hold an escape.
    #[inline(never)]
    fn long_string(&mut self) -> Result<bool, ScanError> {
        let bytes = self.bytes();
        let mut at = self.at + 1;
        let mut escaped = false;
        loop {
            at = next_special_byte(bytes, at).ok_or(ScanError { at: bytes.len() })?;
            match bytes[at] {
                b'"' => {
                    self.at = at + 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    at = escape_end(bytes, at).ok_or(ScanError { at })?;
                }
                _ => return Err(ScanError { at }),
            }
        }
    }

    /// Reads a number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<(), ScanError> {
        let bytes = self.bytes();
        let mut at = self.at;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        match bytes.get(at) {
            Some(b'0') => {
                at += 1;
                // A leading zero stands alone.
                if bytes.get(at).is_some_and(u8::is_ascii_digit) {
                    return Err(ScanError { at });
                }
            }
            Some(b'1'..=b'9') => at = digits_end(bytes, at),
            _ => return Err(ScanError { at }),
        }
        if bytes.get(at) == Some(&b'.') {
            at = required_digits(bytes, at + 1)?;
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            at = required_digits(bytes, at)?;
        }
        self.at = at;
        Ok(())
    }

    /// Reads `true`, `false` or `null`.
    fn word(&mut self) -> Result<(), ScanError> {
        let rest = self.bytes().get(self.at..).unwrap_or_default();
        for word in [&b"true"[..], b"false", b"null"] {
            if rest.starts_with(word) {
                self.at += word.len();
                return Ok(());
            }
        }
        Err(self.error())
    }

    /// Reads the array or object whose opening bracket is at the current position, and
    /// everything in it, without recursion (so no nesting depth overflows a stack).
    fn container(&mut self) -> Result<(), ScanError> {
        let mut open = std::mem::take(&mut self.open);
        open.clear();
        let result = self.container_with(&mut open);
        self.open = open;
        result
    }

    fn container_with(&mut self, open: &mut Vec<u8>) -> Result<(), ScanError> {
        // Just after an opening bracket: a value (or a key) or the closing bracket comes next.
        let mut just_opened;
        open.push(self.bytes()[self.at]);
        self.at += 1;
        just_opened = true;
        loop {
            self.skip_whitespace();
            let Some(&inner) = open.last() else { return Ok(()) };
            let closing = if inner == b'[' { b']' } else { b'}' };
            let byte = *self.bytes().get(self.at).ok_or_else(|| self.error())?;
            if byte == closing {
                self.at += 1;
                open.pop();
                if open.is_empty() {
                    return Ok(());
                }
                just_opened = false;
                continue;
            }
            if !just_opened {
                if byte != b',' {
                    return Err(self.error());
                }
                self.at += 1;
                self.skip_whitespace();
            }
            if inner == b'{' {
                if self.bytes().get(self.at) != Some(&b'"') {
                    return Err(self.error());
                }
                self.string()?;
                self.expect(b':')?;
            }
            match self.peek() {
                Some(Kind::Array | Kind::Object) => {
                    open.push(self.bytes()[self.at]);
                    self.at += 1;
                    just_opened = true;
                }
                Some(Kind::String) => {
                    self.string()?;
                    just_opened = false;
                }
                Some(Kind::Number) => {
                    self.number()?;
                    just_opened = false;
                }
                Some(Kind::Bool | Kind::Null) => {
                    self.word()?;
                    just_opened = false;
                }
                None => return Err(self.error()),
            }
        }
    }
}

/// The end of the digits starting at `at`.
fn digits_end(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    at
}

/// The end of at least one digit starting at `at`.
fn required_digits(bytes: &[u8], at: usize) -> Result<usize, ScanError> {
    if !bytes.get(at).is_some_and(u8::is_ascii_digit) {
        return Err(ScanError { at });
    }
    Ok(digits_end(bytes, at))
}

/// Where the escape whose backslash is at `at` ends (the next byte to read), if it is one
/// JSON allows: `\" \\ \/ \b \f \n \r \t` or `\u` and four hex digits.
fn escape_end(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(at + 2),
        b'u' => {
            let hex = bytes.get(at + 2..at + 6)?;
            hex.iter().all(u8::is_ascii_hexdigit).then_some(at + 6)
        }
        _ => None,
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is zero (exact for the lowest such byte, which is
/// all [`next_special_byte`] uses).
#[inline]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// The high bit of each byte of the eight in `chunk` that is a quote, a backslash or a control
/// character (exact for the first such byte, which is all the callers use).
#[inline]
fn special_bytes(chunk: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(chunk);
    let word = u64::from_le_bytes(word);
    let quotes = zero_bytes(word ^ (ONES * u64::from(b'"')));
    let backslashes = zero_bytes(word ^ (ONES * u64::from(b'\\')));
    // Bytes below 0x20: subtracting 0x20 borrows into the high bit, unless the byte had it.
    let controls = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    quotes | backslashes | controls
}

/// The first byte from `at` on that ends a string's plain run: a quote, a backslash or a
/// control character (below 0x20, which JSON strings may not hold).
#[inline]
fn next_special_byte(bytes: &[u8], mut at: usize) -> Option<usize> {
    while let Some(chunk) = bytes.get(at..at + 8) {
        let found = special_bytes(chunk);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes
        .get(at..)?
        .iter()
        .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
        .map(|found| at + found)
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;

    /// Reads `text` as one value and checks nothing follows.
    fn scan(text: &str) -> Result<Span<'_>, ScanError> {
        let mut scanner = Scanner::new(text);
        let span = scanner.value()?;
        scanner.finish()?;
        Ok(span)
    }

    #[test]
    fn spans_are_the_values_trimmed() {
        let span = scan(" {\"a\": [1, {\"b\":null}], \"c\":\"x\"} ").unwrap();
        assert_eq!(span.text(), "{\"a\": [1, {\"b\":null}], \"c\":\"x\"}");
        assert_eq!(span.kind(), Kind::Object);
        assert!(span.is_spaced());
        assert!(!scan("[1,2,{\"a b\":\"c d\"}]").unwrap().is_spaced());
    }

    #[test]
    fn strings_know_their_escapes() {
        let plain = scan("\"a b\"").unwrap();
        assert_eq!(plain.plain_str(), Some("a b"));
        let escaped = scan(r#""a\"b\u00e9""#).unwrap();
        assert_eq!(escaped.plain_str(), None);
        assert_eq!(escaped.text(), r#""a\"b\u00e9""#);
    }

    #[test]
    fn objects_read_member_by_member() {
        let text = r#"{ "a" : 1, "b\n": {"x": [true]} ,"c":"t"}"#;
        let mut scanner = Scanner::new(text);
        scanner.begin_object().unwrap();
        let mut members = Vec::new();
        let mut first = true;
        while let Some(key) = scanner.next_key(first).unwrap() {
            first = false;
            members.push((key.text(), scanner.value().unwrap().text()));
        }
        scanner.finish().unwrap();
        assert_eq!(members, vec![("\"a\"", "1"), ("\"b\\n\"", r#"{"x": [true]}"#), ("\"c\"", "\"t\"")]);
    }

    #[test]
    fn arrays_read_element_by_element() {
        let text = "[ 1 ,\"two\", [3] ]";
        let mut scanner = Scanner::new(text);
        scanner.begin_array().unwrap();
        let mut elements = Vec::new();
        let mut first = true;
        while scanner.next_element(first).unwrap() {
            first = false;
            elements.push(scanner.value().unwrap().text());
        }
        assert_eq!(elements, vec!["1", "\"two\"", "[3]"]);
        assert_eq!(scanner.finish(), Ok(()));
    }

    #[test]
    fn what_serde_json_refuses_is_refused() {
        let broken = [
            "",
            " ",
            "[",
            "]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{a:1}",
            "{\"a\" 1}",
            "01",
            "-",
            "1.",
            "1e",
            "1e+",
            ".5",
            "+1",
            "tru",
            "nul",
            "True",
            "\"a",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"a\u{1}b\"",
            "\"tab\there\"",
            "[1]]",
            "{} {}",
            "[\"a\"\"b\"]",
            "NaN",
            "Infinity",
            "[1,2,3",
            "{\"a\":[1,{\"b\":2]}",
        ];
        for text in broken {
            assert!(serde_json::from_str::<&RawValue>(text).is_err(), "serde_json accepts {text:?}");
            assert!(scan(text).is_err(), "the scanner accepts {text:?}");
        }
    }

    #[test]
    fn what_serde_json_accepts_is_accepted() {
        let valid = [
            "0",
            "-0",
            "-0.5e-3",
            "12.50E+2",
            "true",
            "false",
            "null",
            "\"\"",
            "\"\\u00e9\\n\\/\"",
            "[]",
            "{}",
            " [ ] ",
            "[[[[]]]]",
            "{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}}}",
            "\"é 日本\"",
            "\"a very long string that runs past several eight-byte words \\\" with a quote\"",
        ];
        for text in valid {
            let expected = serde_json::from_str::<&RawValue>(text).unwrap().get();
            assert_eq!(scan(text).map(|span| span.text()), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_needs_no_stack() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(scan(&text).is_ok());
    }

    #[test]
    fn special_bytes_are_found_in_every_lane() {
        for length in 0..20 {
            for position in 0..length {
                for special in [b'"', b'\\', 0x1f, 0x00] {
                    let mut bytes = vec![b'a'; length];
                    bytes[position] = special;
                    assert_eq!(next_special_byte(&bytes, 0), Some(position), "{bytes:?}");
                }
            }
            // Bytes at or above 0x20, non-ASCII included, are plain.
            let plain: Vec<u8> = (0..length).map(|i| [b'a', 0x20, 0x7f, 0x80, 0xff][i % 5]).collect();
            assert_eq!(next_special_byte(&plain, 0), None);
        }
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    use super::*;

    /// JSON-ish text: mostly the bytes JSON is made of, so mutations stay near valid JSON.
    fn jsonish() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "[", "]", "{", "}", ",", ":", " ", "\n", "\"", "\\", "\\u00e9", "\\n", "a", "é", "0", "1", "-",
            ".", "e", "+", "true", "false", "null", "\"k\":", "\u{1}", "\t",
        ]);
        prop::collection::vec(pieces, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(sluice_fuzz::config())]

        #[test]
        fn accepts_exactly_what_serde_json_accepts_with_the_same_text(text in jsonish()) {
            let expected = serde_json::from_str::<&RawValue>(&text).map(RawValue::get).ok();
            let mut scanner = Scanner::new(&text);
            let scanned = scanner.value().and_then(|span| scanner.finish().map(|()| span.text())).ok();
            prop_assert_eq!(scanned, expected, "{:?}", text);
        }
    }
}
