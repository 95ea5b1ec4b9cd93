//! Reading a record's JSON text field by field, without building a value tree.
//!
//! A plugin derives `Deserialize` on a struct of `Option<&RawValue>` fields, parses the record
//! with [`parse_object`] and checks each field with the readers here. Fields stay borrowed raw
//! text, so the common, valid record allocates almost nothing: steps like these run over
//! millions of records per job. The failure sentences are shared too, so every plugin's dead
//! letters read alike ("expected a JSON object, found an array").
//!
//! [`scan`] reads JSON text once, member by member, for plugins that need both an element's
//! members and its text.

pub mod scan;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::error::Category;
use serde_json::value::RawValue;

/// Parses `bytes` as one JSON object into `T`.
///
/// Use it rather than `serde_json::from_slice`, which would also read a JSON array into a
/// derived struct, and whose errors do not say whether the input was JSON at all.
///
/// # Errors
/// A plain sentence for the dead letters: the bytes are not JSON (invalid UTF-8 anywhere,
/// even in a field `T` ignores, included), are JSON but not an object, or the object repeats
/// a field.
pub fn parse_object<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    // A derived struct also accepts a JSON array (fields by position); only an object is a record.
    let first_byte = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if first_byte == Some(&b'{') {
        // UTF-8 is checked once for the whole record. Read from bytes, serde_json checks each
        // string and raw field on its own, about a tenth of a plugin's time in a profile of the
        // ETL's plugins, and skips the check in fields it ignores.
        let text = std::str::from_utf8(bytes)
            .map_err(|error| format!("not valid JSON: invalid UTF-8 at byte {}", error.valid_up_to()))?;
        return serde_json::from_str(text).map_err(|error| match error.classify() {
            Category::Data => format!("not a valid record: {error}"),
            Category::Io | Category::Syntax | Category::Eof => format!("not valid JSON: {error}"),
        });
    }
    match serde_json::from_slice::<&RawValue>(bytes) {
        Ok(raw) => Err(format!("expected a JSON object, found {}", kind(raw))),
        Err(error) => Err(format!("not valid JSON: {error}")),
    }
}

/// Names the kind of a JSON value, as failure reasons say it ("found an array").
pub fn kind(raw: &RawValue) -> &'static str {
    kind_of_text(raw.get())
}

/// [`kind`] of valid, trimmed JSON text.
pub fn kind_of_text(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// The text of a JSON string value, or `None` when `raw` is any other kind of value.
///
/// Borrows the text when it has no escapes, which is nearly always.
pub fn string_content(raw: &RawValue) -> Option<Cow<'_, str>> {
    string_text(raw.get())
}

/// [`string_content`] of valid JSON text: the string's content, or `None` for another kind of
/// value (or a string whose escapes do not decode, such as a lone surrogate).
pub fn string_text(text: &str) -> Option<Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// The same JSON value without insignificant whitespace, keeping the field order.
///
/// For json columns: a json value is passed on as its text, and rows read back as JSON (to a
/// chained step, Kafka, an HTTP reply) should be compact, while inputs (for example a
/// pretty-printed JSON array file) need not be. Borrows `raw` when it is already compact, which is the common case: spaces
/// inside strings (a user agent, an SMTP response) do not count. Works on bytes: every byte
/// that matters (quote, backslash, whitespace) is ASCII, so UTF-8 text passes through whole.
pub fn compact(raw: &RawValue) -> Cow<'_, RawValue> {
    let bytes = raw.get().as_bytes();
    let Some(first) = first_layout_byte(bytes) else {
        return Cow::Borrowed(raw);
    };
    let mut compacted = Vec::with_capacity(bytes.len());
    compact_from(bytes, first, &mut compacted);
    // Removing ASCII whitespace outside strings from valid JSON leaves valid UTF-8 JSON, so
    // this only falls back to the original text if that reasoning were ever wrong.
    match String::from_utf8(compacted).map(RawValue::from_string) {
        Ok(Ok(value)) => Cow::Owned(value),
        _ => Cow::Borrowed(raw),
    }
}

/// [`compact`] of valid, trimmed JSON text.
pub fn compact_text(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let Some(first) = first_layout_byte(bytes) else {
        return Cow::Borrowed(text);
    };
    let mut compacted = Vec::with_capacity(bytes.len());
    compact_from(bytes, first, &mut compacted);
    // Removing ASCII whitespace outside strings keeps UTF-8 text UTF-8.
    match String::from_utf8(compacted) {
        Ok(text) => Cow::Owned(text),
        Err(_) => Cow::Borrowed(text),
    }
}

/// Appends [`compact`]'s form of the valid JSON value `text` to `out`: for json columns,
/// written straight into the column's bytes.
pub fn write_compact(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    match first_layout_byte(bytes) {
        None => out.extend_from_slice(bytes),
        Some(first) => compact_from(bytes, first, out),
    }
}

/// Where the first whitespace outside strings of the trimmed JSON value `bytes` is, if any.
fn first_layout_byte(bytes: &[u8]) -> Option<usize> {
    // A value is trimmed, so only an array or an object can hold whitespace outside a string;
    // a string, number or word is looked at no further.
    if !matches!(bytes.first(), Some(b'[' | b'{')) {
        return None;
    }
    first_whitespace_outside_strings(bytes)
}

/// Appends `bytes` without whitespace outside strings, given that the first such byte is at
/// `first`.
fn compact_from(bytes: &[u8], first: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&bytes[..first]);
    // `first` is outside any string, so the scan below starts outside one too.
    let mut scanner = StringScanner::default();
    for &byte in &bytes[first..] {
        if scanner.step(byte) || !is_insignificant_whitespace(byte) {
            out.push(byte);
        }
    }
}

/// Where the first insignificant whitespace byte of JSON text is, if there is one.
///
/// Jumps from quote to quote instead of following every byte through [`StringScanner`]: a
/// string's content is only searched for its closing quote or a backslash, so already compact
/// text (the common case) costs a few tight searches per value; the step-by-step scan was a
/// few percent of the ETL's CPU.
fn first_whitespace_outside_strings(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        // Outside a string: the next quote opens one, whitespace before it is the answer.
        at += bytes.get(at..)?.iter().position(|&byte| byte == b'"' || is_insignificant_whitespace(byte))?;
        if bytes.get(at) != Some(&b'"') {
            return Some(at);
        }
        at = closing_quote(bytes, at)? + 1;
    }
}

/// Where the string opened by the quote at `open` in JSON text ends: the index of its closing
/// quote, found by searching only for quotes and backslashes (a backslash escapes the byte
/// after it). `None` when the text ends first.
#[inline]
pub fn closing_quote(bytes: &[u8], open: usize) -> Option<usize> {
    let mut at = open + 1;
    loop {
        at += bytes.get(at..)?.iter().position(|&byte| byte == b'"' || byte == b'\\')?;
        if bytes.get(at) == Some(&b'"') {
            return Some(at);
        }
        at += 2;
    }
}

/// Follows JSON text byte by byte, knowing whether each byte is part of a string.
#[derive(Debug, Default)]
struct StringScanner {
    in_string: bool,
    escaped: bool,
}

impl StringScanner {
    /// Whether `byte` belongs to a string (its quotes included).
    fn step(&mut self, byte: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
            }
            true
        } else if byte == b'"' {
            self.in_string = true;
            true
        } else {
            false
        }
    }
}

/// A JSON array holding only `element` (a value's text), kept byte for byte: the input record for
/// a [`Failure::part`](crate::Failure::part) of an array input.
///
/// Byte for byte because the part is dead-lettered and later re-run as input: the same text
/// gives the same row (for example the same `raw` column) as the first run would have.
pub fn single_element_array(element: &str) -> Vec<u8> {
    let text = element;
    let mut array = Vec::with_capacity(text.len() + 2);
    array.push(b'[');
    array.extend_from_slice(text.as_bytes());
    array.push(b']');
    array
}

/// JSON's whitespace between tokens: space, tab, line feed and carriage return.
#[inline]
pub fn is_insignificant_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    #[derive(Debug, Deserialize)]
    struct OneField<'a> {
        #[serde(borrow)]
        a: Option<&'a RawValue>,
    }

    #[test]
    fn object_parses_into_fields() {
        let parsed: OneField = parse_object(br#" {"a": [1, 2]} "#).unwrap();
        assert_eq!(parsed.a.unwrap().get(), "[1, 2]");
    }

    #[test]
    fn null_field_reads_as_absent() {
        let parsed: OneField = parse_object(br#"{"a":null}"#).unwrap();
        assert!(parsed.a.is_none());
    }

    #[test]
    fn array_is_not_an_object_even_though_serde_would_accept_it() {
        let error = parse_object::<OneField>(b"[1]").unwrap_err();
        assert_eq!(error, "expected a JSON object, found an array");
    }

    #[test]
    fn scalars_are_not_objects() {
        assert_eq!(parse_object::<OneField>(b"42").unwrap_err(), "expected a JSON object, found a number");
        assert_eq!(parse_object::<OneField>(b"null").unwrap_err(), "expected a JSON object, found null");
    }

    #[test]
    fn broken_json_says_where() {
        let error = parse_object::<OneField>(br#"{"a":"#).unwrap_err();
        assert!(error.starts_with("not valid JSON: EOF"), "{error}");
        let error = parse_object::<OneField>(b"").unwrap_err();
        assert!(error.starts_with("not valid JSON: EOF"), "{error}");
        let error = parse_object::<OneField>(b"{} trailing").unwrap_err();
        assert!(error.starts_with("not valid JSON: trailing characters"), "{error}");
    }

    #[test]
    fn invalid_utf8_is_not_json() {
        let error = parse_object::<OneField>(b"{\"a\":\"\xff\"}").unwrap_err();
        assert!(error.starts_with("not valid JSON"), "{error}");
        let error = parse_object::<OneField>(b"\"\xff\"").unwrap_err();
        assert!(error.starts_with("not valid JSON"), "{error}");
        // serde_json skips a field the struct ignores without checking it; the record is still not JSON.
        let error = parse_object::<OneField>(b"{\"a\":1,\"b\":\"\x80x\"}").unwrap_err();
        assert_eq!(error, "not valid JSON: invalid UTF-8 at byte 12");
    }

    #[test]
    fn repeated_field_is_not_a_valid_record() {
        let error = parse_object::<OneField>(br#"{"a":1,"a":2}"#).unwrap_err();
        assert!(error.starts_with("not a valid record: duplicate field `a`"), "{error}");
    }

    #[test]
    fn kinds_are_named() {
        let kinds: Vec<_> = ["\"x\"", "{}", "[]", "true", "false", "null", "-1.5e3"]
            .into_iter()
            .map(|text| kind(raw(text)))
            .collect();
        assert_eq!(
            kinds,
            ["a string", "an object", "an array", "a boolean", "a boolean", "null", "a number"]
        );
    }

    #[test]
    fn string_content_borrows_plain_text() {
        assert!(matches!(string_content(raw("\"VERIFIED\"")), Some(Cow::Borrowed("VERIFIED"))));
        assert_eq!(string_content(raw("\"\"")).as_deref(), Some(""));
    }

    #[test]
    fn string_content_decodes_escapes() {
        let decoded = string_content(raw(r#""a\"b\u00e9\\""#));
        assert_eq!(decoded.as_deref(), Some("a\"bé\\"));
    }

    #[test]
    fn string_content_is_none_for_other_kinds() {
        for text in ["1", "true", "null", "[\"a\"]", "{\"a\":\"b\"}"] {
            assert_eq!(string_content(raw(text)), None, "{text}");
        }
    }

    #[test]
    fn single_element_array_keeps_the_element_text_exactly() {
        let elements: Vec<&RawValue> = serde_json::from_str(r#"[ {"a": 1.50,  "b":"x y"} , 7]"#).unwrap();
        assert_eq!(single_element_array(elements[0].get()), br#"[{"a": 1.50,  "b":"x y"}]"#);
        assert_eq!(single_element_array(elements[1].get()), b"[7]");
    }

    #[test]
    fn compact_keeps_compact_text_borrowed() {
        assert!(matches!(compact(raw(r#"[{"a":1}]"#)), Cow::Borrowed(_)));
        // Spaces, tabs and escaped quotes inside strings are content, not layout.
        let spaced = raw(r#"{"useragent":"Mozilla/5.0 (X11; Linux)","response":"250 \"OK\"\t x"}"#);
        assert!(matches!(compact(spaced), Cow::Borrowed(_)));
    }

    #[test]
    fn compact_removes_whitespace_outside_strings_only() {
        let text = "[ {\n\t\"b\" : \"NOT  VERIFIED\",\r\n \"a\": \"q\\\" x\" } , 2 ]";
        assert_eq!(compact(raw(text)).get(), r#"[{"b":"NOT  VERIFIED","a":"q\" x"},2]"#);
    }

    #[test]
    fn the_first_whitespace_is_found_as_a_byte_by_byte_scan_finds_it() {
        let by_each_byte = |bytes: &[u8]| {
            let mut scanner = StringScanner::default();
            bytes.iter().position(|&byte| !scanner.step(byte) && is_insignificant_whitespace(byte))
        };
        let texts = [
            r#"[{"a":1}]"#,
            r#"{"a":"x y","b":[1, 2]}"#,
            r#"{"a":"q\"x y\"","b" :1}"#,
            r#"{"a":"ends in a backslash\\", "b":2}"#,
            r#"["\\\"  ", 1 ]"#,
            "\"\t\"\n",
            r#""""#,
            " 1",
            "[1,\r\n2]",
        ];
        for text in texts {
            let bytes = text.as_bytes();
            assert_eq!(first_whitespace_outside_strings(bytes), by_each_byte(bytes), "{text}");
        }
    }

    #[test]
    fn compact_keeps_non_ascii_text() {
        assert_eq!(compact(raw("[ \"é ü\" , \"日本\" ]")).get(), r#"["é ü","日本"]"#);
    }
}
