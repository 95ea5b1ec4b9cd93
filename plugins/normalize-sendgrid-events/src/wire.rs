//! Webhook bodies as they arrive: each event's text and its members, read in one pass.
//!
//! [`read_body`] reads a body once with the SDK's [`Scanner`]: for every element of the array,
//! its text (kept for the `raw` column and for a failure's part) and, when it is an object, its
//! members, which borrow from the body and go straight into the caller's [`EventFields`]. Only
//! the members a column needs are typed afterwards. Values that are passed on (`custom_args`,
//! `pool`, `url_offset`, `raw`) keep their original text, compacted.
//!
//! When the scanner stops, the caller reads the body again with [`read_body_with_serde`]: as
//! one raw value per element and then each element's members. A body serde_json refuses fails
//! with serde_json's reason, and anything the scanner does not read itself (a member name with
//! an escape, whose decoding may fail) is read exactly as serde_json reads it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use sluice_plugin_sdk::json::scan::{Kind, Scanner, Span};
use sluice_plugin_sdk::json::{string_text, write_compact};

use crate::fields::EventFields;

/// One JSON value of an event, as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    /// The value's text, trimmed.
    pub text: &'a str,
    pub kind: Kind,
    /// A string holding an escape (so its content differs from its text between the quotes).
    pub escaped: bool,
    /// An array or object holding whitespace outside its strings (so its compact text differs).
    pub spaced: bool,
}

impl<'a> Value<'a> {
    /// A value of valid, trimmed JSON text.
    pub fn of_text(text: &'a str) -> Self {
        let kind = kind_of(text);
        let escaped = kind == Kind::String && text.contains('\\');
        let spaced = matches!(kind, Kind::Array | Kind::Object) && {
            let mut compacted = Vec::new();
            write_compact(text, &mut compacted);
            compacted.len() != text.len()
        };
        Value { text, kind, escaped, spaced }
    }

    fn of_span(span: Span<'a>) -> Self {
        Value { text: span.text(), kind: span.kind(), escaped: span.is_escaped(), spaced: span.is_spaced() }
    }

    /// The content of a string, or `None` for any other value (or escapes that do not decode).
    pub fn string(&self) -> Option<Cow<'a, str>> {
        match (self.kind, self.escaped) {
            (Kind::String, false) => self.text.get(1..self.text.len() - 1).map(Cow::Borrowed),
            (Kind::String, true) => string_text(self.text),
            _ => None,
        }
    }

    /// Appends the value's compact text (no whitespace outside strings) to `out`.
    pub fn write_compact(&self, out: &mut Vec<u8>) {
        if self.spaced {
            write_compact(self.text, out);
        } else {
            out.extend_from_slice(self.text.as_bytes());
        }
    }
}

/// The kind of valid, trimmed JSON text, from its first byte.
pub fn kind_of(text: &str) -> Kind {
    match text.as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

/// A member of an event object: its name, decoded, and its value.
pub type Member<'a> = (Cow<'a, str>, Value<'a>);

/// One element of a webhook body, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element<'a> {
    /// An object, whose members went to the caller's [`EventFields`]; `text` exactly as sent,
    /// `spaced` when it holds whitespace outside strings.
    Object { text: &'a str, spaced: bool },
    /// Any other JSON value.
    NotObject { text: &'a str },
    /// An object serde_json cannot read as members (a member name that does not decode).
    Unreadable { text: &'a str, reason: String },
}

impl<'a> Element<'a> {
    /// The element's text, trimmed, exactly as sent.
    pub fn text(&self) -> &'a str {
        match self {
            Element::Object { text, .. } | Element::NotObject { text } | Element::Unreadable { text, .. } => {
                text
            }
        }
    }
}

/// The text stopped being a JSON array somewhere: read it again with serde_json, which says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Reads `text` as a JSON array of events in one pass, handing each element to `each` with its
/// members sorted into `fields` (cleared for each element).
///
/// # Errors
/// [`Stopped`] where `text` stops being a JSON array; `each` may have seen some elements by then.
pub fn read_body<'a, E>(
    text: &'a str,
    fields: &mut EventFields<'a>,
    mut each: impl FnMut(Element<'a>, &mut EventFields<'a>) -> Result<(), E>,
) -> Result<Result<(), E>, Stopped> {
    let mut scanner = Scanner::new(text);
    scanner.begin_array().map_err(|_| Stopped)?;
    let mut first = true;
    while scanner.next_element(first).map_err(|_| Stopped)? {
        first = false;
        fields.clear();
        let element = match scanner.peek() {
            Some(Kind::Object) => read_object(&mut scanner, fields)?,
            _ => Element::NotObject { text: scanner.value().map_err(|_| Stopped)?.text() },
        };
        if let Err(error) = each(element, fields) {
            return Ok(Err(error));
        }
    }
    scanner.finish().map_err(|_| Stopped)?;
    Ok(Ok(()))
}

/// Reads the object that comes next, its members into `fields`.
fn read_object<'a>(scanner: &mut Scanner<'a>, fields: &mut EventFields<'a>) -> Result<Element<'a>, Stopped> {
    let start = scanner.position();
    let runs = scanner.whitespace_runs();
    let mut escaped_name = false;
    scanner.begin_object().map_err(|_| Stopped)?;
    let mut first = true;
    while let Some(name) = scanner.next_key(first).map_err(|_| Stopped)? {
        first = false;
        let value = Value::of_span(scanner.value().map_err(|_| Stopped)?);
        match name.plain_str() {
            Some(name) => fields.put(Cow::Borrowed(name), value),
            None => escaped_name = true,
        }
    }
    let text = scanner.slice(start, scanner.position());
    let spaced = scanner.whitespace_runs() != runs;
    if escaped_name {
        // Rare: names are decoded the way serde_json decodes them, errors included.
        return Ok(match serde_members(text) {
            Ok(members) => {
                fields.clear();
                members.into_iter().for_each(|(name, value)| fields.put(name, value));
                Element::Object { text, spaced }
            }
            Err(reason) => Element::Unreadable { text, reason },
        });
    }
    Ok(Element::Object { text, spaced })
}

/// [`read_body`] by serde_json alone: one raw value per element, then each object's members.
/// For bodies the one-pass reading stops on, so a body serde_json refuses fails with its reason.
///
/// # Errors
/// serde_json's reason when `text` is not a JSON array.
pub fn read_body_with_serde<'a, E>(
    text: &'a str,
    fields: &mut EventFields<'a>,
    mut each: impl FnMut(Element<'a>, &mut EventFields<'a>) -> Result<(), E>,
) -> Result<Result<(), E>, serde_json::Error> {
    let raw_elements: Vec<&RawValue> = serde_json::from_str(text)?;
    for raw in raw_elements {
        fields.clear();
        let value = Value::of_text(raw.get());
        let element = match value.kind {
            Kind::Object => match serde_members(value.text) {
                Ok(members) => {
                    members.into_iter().for_each(|(name, value)| fields.put(name, value));
                    Element::Object { text: value.text, spaced: value.spaced }
                }
                Err(reason) => Element::Unreadable { text: value.text, reason },
            },
            _ => Element::NotObject { text: value.text },
        };
        if let Err(error) = each(element, fields) {
            return Ok(Err(error));
        }
    }
    Ok(Ok(()))
}

/// The members of the object `text` as serde_json reads them, or its reason for refusing them.
fn serde_members(text: &str) -> Result<Vec<Member<'_>>, String> {
    match serde_json::from_str::<RawMembers<'_>>(text) {
        Ok(RawMembers(read)) => {
            Ok(read.into_iter().map(|(name, raw)| (name, Value::of_text(raw.get()))).collect())
        }
        Err(error) => Err(error.to_string()),
    }
}

/// The texts of a JSON array of strings; `None` if `value` is not one.
pub fn string_array<'a>(value: &Value<'a>) -> Option<Vec<Cow<'a, str>>> {
    if value.kind != Kind::Array {
        return None;
    }
    let mut scanner = Scanner::new(value.text);
    let mut items = Vec::new();
    scanner.begin_array().ok()?;
    let mut first = true;
    while scanner.next_element(first).ok()? {
        first = false;
        let item = scanner.value().ok()?;
        items.push(Value::of_span(item).string()?);
    }
    Some(items)
}

/// An object's members in document order, values unparsed (serde_json's reading).
struct RawMembers<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

/// A member name, borrowed unless it holds escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

impl<'de> Deserialize<'de> for RawMembers<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = RawMembers<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMembers<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Text(key)) = map.next_key()? {
                    members.push((key, map.next_value::<&RawValue>()?));
                }
                Ok(RawMembers(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::Field;

    /// Every element of `text` with its members (plain names only, as `(field, text)` pairs
    /// of the fields a column reads and the custom args), read both ways and checked to agree.
    fn read(text: &str) -> Vec<(Element<'_>, Vec<String>)> {
        let mut seen = Vec::new();
        let mut fields = EventFields::default();
        let scanned = read_body(text, &mut fields, |element, fields| {
            seen.push((element, describe(fields)));
            Ok::<(), ()>(())
        });
        assert_eq!(scanned, Ok(Ok(())), "the scanner stops on {text}");
        let mut by_serde = Vec::new();
        let read = read_body_with_serde(text, &mut fields, |element, fields| {
            by_serde.push((element, describe(fields)));
            Ok::<(), ()>(())
        });
        assert!(matches!(read, Ok(Ok(()))), "serde_json refuses {text}");
        assert_eq!(seen, by_serde, "{text}");
        seen
    }

    fn describe(fields: &EventFields<'_>) -> Vec<String> {
        let mut described: Vec<String> = [Field::Email, Field::Reason, Field::Pool]
            .into_iter()
            .filter_map(|field| fields.get(field).map(|value| format!("{field:?}={}", value.text)))
            .collect();
        described.extend(fields.custom_args.iter().map(|(name, value)| format!("{name}={}", value.text)));
        described
    }

    #[test]
    fn kinds_come_from_the_first_character() {
        let cases = [
            ("null", Kind::Null),
            ("true", Kind::Bool),
            ("false", Kind::Bool),
            ("-1.5e3", Kind::Number),
            ("0", Kind::Number),
            (r#""x""#, Kind::String),
            ("[1]", Kind::Array),
            (r#"{"a":1}"#, Kind::Object),
        ];
        for (text, kind) in cases {
            assert_eq!(kind_of(text), kind, "{text}");
        }
    }

    #[test]
    fn members_keep_their_raw_text_and_elements_their_exact_text() {
        let read =
            read(r#"[{"email": "a@b.c", "a\u0041": {"x":1.50}, "pool":{"id": 1}}, 7, {"reason" :null} ]"#);
        assert_eq!(read[0].1, ["Email=\"a@b.c\"", "Pool={\"id\": 1}", "aA={\"x\":1.50}"]);
        assert_eq!(read[1].0, Element::NotObject { text: "7" });
        assert_eq!(read[2].0, Element::Object { text: r#"{"reason" :null}"#, spaced: true });
        assert!(read[2].1.is_empty());
    }

    #[test]
    fn a_name_that_does_not_decode_is_unreadable_as_serde_json_says() {
        let read = read(r#"[{"a\ud800":1}, {"b":2}]"#);
        assert!(
            matches!(&read[0].0, Element::Unreadable { reason, .. } if reason.contains("hex escape")),
            "{:?}",
            read[0]
        );
        assert_eq!(read[1].1, ["b=2"]);
    }

    #[test]
    fn not_an_array_stops_the_scanner_and_is_serde_jsons_error() {
        let mut fields = EventFields::default();
        let each = |_: Element<'_>, _: &mut EventFields<'_>| Ok::<(), ()>(());
        assert_eq!(read_body(r#"{"a":1}"#, &mut fields, each), Err(Stopped));
        assert_eq!(read_body("[1,]", &mut fields, each), Err(Stopped));
        let error = read_body_with_serde(r#"{"a":1}"#, &mut fields, each).map(|_| ()).unwrap_err();
        assert!(error.to_string().starts_with("invalid type: map, expected a sequence"), "{error}");
    }

    #[test]
    fn string_arrays_hold_only_strings() {
        let value = Value::of_text;
        assert_eq!(
            string_array(&value(r#"["a", "b\"c"]"#)),
            Some(vec![Cow::Borrowed("a"), Cow::Owned("b\"c".to_owned())])
        );
        assert_eq!(string_array(&value(r#"["a", 1]"#)), None);
        assert_eq!(string_array(&value(r#""a""#)), None);
        assert_eq!(string_array(&value("[]")), Some(Vec::new()));
    }
}
