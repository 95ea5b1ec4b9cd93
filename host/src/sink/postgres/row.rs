//! A plugin output value (a JSON object) taken apart into its fields without copying them.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The top-level fields of one JSON object, in the order written; values stay raw JSON text
/// until a column's type reads them.
#[derive(Debug, Default)]
pub struct RowFields<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RowFields<'a> {
    /// Parses `value` as a JSON object.
    ///
    /// # Errors
    /// A short reason when `value` is not a JSON object.
    pub fn parse(value: &'a [u8]) -> Result<Self, String> {
        let mut deserializer = serde_json::Deserializer::from_slice(value);
        let fields = deserializer
            .deserialize_map(FieldsVisitor)
            .map_err(|error| format!("not a JSON object: {error}"))?;
        deserializer.end().map_err(|error| format!("not a JSON object: {error}"))?;
        Ok(fields)
    }

    /// The raw value of field `name`; the last one when the object repeats it, as JSON parsers do.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.fields.iter().rev().find(|(field, _)| field == name).map(|(_, value)| *value)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = RowFields<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some((name, value)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
            fields.push((name, value));
        }
        Ok(RowFields { fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_raw_text() {
        let row = RowFields::parse(br#"{"a":"x","b":[1, 2],"c":null}"#).expect("object");
        assert_eq!(row.get("a").map(RawValue::get), Some(r#""x""#));
        assert_eq!(row.get("b").map(RawValue::get), Some("[1, 2]"));
        assert_eq!(row.get("c").map(RawValue::get), Some("null"));
        assert!(row.get("d").is_none());
    }

    #[test]
    fn escaped_names_are_unescaped() {
        let row = RowFields::parse(br#"{"a\u0062":1}"#).expect("object");
        assert_eq!(row.get("ab").map(RawValue::get), Some("1"));
    }

    #[test]
    fn anything_but_one_object_is_refused() {
        assert!(RowFields::parse(b"[1]").is_err());
        assert!(RowFields::parse(b"{} {}").is_err());
        assert!(RowFields::parse(b"{\"a\":").is_err());
    }
}
