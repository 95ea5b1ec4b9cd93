//! Events as they arrive: an object's members kept as borrowed raw JSON.
//!
//! Building a `serde_json::Value` tree per event allocates every key and string and was the
//! bulk of the normalization time. Here an event is split into `(key, raw value)` pairs that
//! borrow from the webhook body, and only the members a column needs are typed. Values that are
//! passed on (`custom_args`, `pool`, `url_offset`, `raw`) keep their original text, compacted.
//! Unlike [`sluice_plugin_sdk::json::parse_object`], which reads a fixed set of fields, this
//! keeps every member, because unknown members are the sender's custom args.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use sluice_plugin_sdk::json::string_content;

/// The kind of a JSON value, read from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

/// The kind of `raw`, which serde_json has already validated (so it has no leading blanks).
pub fn json_kind(raw: &RawValue) -> JsonKind {
    match raw.get().as_bytes().first() {
        Some(b'n') => JsonKind::Null,
        Some(b't' | b'f') => JsonKind::Bool,
        Some(b'"') => JsonKind::String,
        Some(b'[') => JsonKind::Array,
        Some(b'{') => JsonKind::Object,
        _ => JsonKind::Number,
    }
}

/// The members of a JSON object in document order, values unparsed.
#[derive(Debug)]
pub struct RawMembers<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

/// Splits `raw` into its members, or `None` when it is not an object.
///
/// # Errors
/// Only if `raw` is not valid JSON, which a `RawValue` from serde_json never is.
pub fn object_members(raw: &RawValue) -> Result<Option<RawMembers<'_>>, serde_json::Error> {
    if json_kind(raw) != JsonKind::Object {
        return Ok(None);
    }
    serde_json::from_str(raw.get()).map(Some)
}

/// The texts of a JSON array of strings; `None` if `raw` is not one.
pub fn string_array(raw: &RawValue) -> Option<Vec<Cow<'_, str>>> {
    if json_kind(raw) != JsonKind::Array {
        return None;
    }
    let items: Vec<&RawValue> = serde_json::from_str(raw.get()).ok()?;
    items.into_iter().map(string_content).collect()
}

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

    fn raw(text: &str) -> Box<RawValue> {
        match RawValue::from_string(text.to_owned()) {
            Ok(raw) => raw,
            Err(error) => panic!("test JSON {text}: {error}"),
        }
    }

    #[test]
    fn kinds_come_from_the_first_character() {
        let cases = [
            ("null", JsonKind::Null),
            ("true", JsonKind::Bool),
            ("false", JsonKind::Bool),
            ("-1.5e3", JsonKind::Number),
            ("0", JsonKind::Number),
            (r#""x""#, JsonKind::String),
            ("[1]", JsonKind::Array),
            (r#"{"a":1}"#, JsonKind::Object),
        ];
        for (text, kind) in cases {
            assert_eq!(json_kind(&raw(text)), kind, "{text}");
        }
    }

    #[test]
    fn members_keep_order_and_raw_text() {
        let object = raw(r#"{"b": [1, 2], "a\u0041": {"x":1.50}, "c":"t"}"#);
        let Ok(Some(members)) = object_members(&object) else {
            panic!("expected members");
        };
        let pairs: Vec<(&str, &str)> =
            members.0.iter().map(|(key, value)| (key.as_ref(), value.get())).collect();
        assert_eq!(pairs, vec![("b", "[1, 2]"), ("aA", r#"{"x":1.50}"#), ("c", r#""t""#)]);
    }

    #[test]
    fn non_objects_have_no_members() {
        assert!(matches!(object_members(&raw("[1]")), Ok(None)));
        assert!(matches!(object_members(&raw(r#""x""#)), Ok(None)));
    }

    #[test]
    fn string_arrays_hold_only_strings() {
        assert_eq!(
            string_array(&raw(r#"["a", "b\"c"]"#)),
            Some(vec![Cow::Borrowed("a"), Cow::Owned("b\"c".to_owned())])
        );
        assert_eq!(string_array(&raw(r#"["a", 1]"#)), None);
        assert_eq!(string_array(&raw(r#""a""#)), None);
        assert_eq!(string_array(&raw("[]")), Some(Vec::new()));
    }
}
