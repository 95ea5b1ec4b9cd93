//! Rows of contract 0.2.0 plugins, which left the plugin as JSON objects, read into typed rows
//! so that everything after the plugin runtime is written once, for [`RowBatch`]es.
//!
//! The rules are those 0.2.0 hosts applied when they decoded such rows into Arrow: a missing
//! field is null; `int32`/`int64`/`timestamp-ms` take whole numbers in range only (never
//! `1.5`, never `"1"`); `string` takes JSON strings; `bool` takes `true`/`false`;
//! `list-string` takes an array of strings; `json` keeps any value's text. A row that breaks
//! them fails its input record, naming the field, and the batch's other rows go on.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::rows::{RowBatch, TextList, Texts, Value};
use super::schema::ColumnType;

/// Why one 0.2.0 row could not be read: the field at fault (when there is one) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFault {
    pub field: Option<String>,
    pub reason: String,
}

/// Appends the 0.2.0 row `value` (one JSON object) to `batch`.
///
/// # Errors
/// [`RowFault`] when `value` is not a JSON object or a field does not fit its column; nothing
/// is appended then.
pub fn push_json_row(
    batch: &mut RowBatch,
    input: u32,
    key: Option<&[u8]>,
    value: &[u8],
) -> Result<(), RowFault> {
    let fields = RowFields::parse(value).map_err(|reason| RowFault { field: None, reason })?;
    let schema = batch.schema().clone();
    // Text lists are rebuilt as texts the values can borrow from.
    let mut lists: Vec<Texts> = Vec::new();
    let mut raw: Vec<Option<&RawValue>> = Vec::with_capacity(schema.columns.len());
    let mut unquoted: Vec<Option<String>> = Vec::with_capacity(schema.columns.len());
    for column in &schema.columns {
        let field = fields.get(&column.name).filter(|value| value.get() != "null");
        raw.push(field);
        let fault = |reason: String| RowFault { field: Some(column.name.clone()), reason };
        unquoted.push(match (column.column_type, field) {
            (ColumnType::Text, Some(field)) => Some(string(field).map_err(fault)?),
            _ => None,
        });
        if let (ColumnType::TextList, Some(field)) = (column.column_type, field) {
            let items: Vec<Cow<'_, str>> = serde_json::from_str(field.get())
                .map_err(|_| fault(format!("expected an array of strings, found {}", field.get())))?;
            let mut texts = Texts::new();
            for item in &items {
                texts.push(item).map_err(fault)?;
            }
            lists.push(texts);
        }
    }
    let mut next_list = lists.iter();
    let mut values = Vec::with_capacity(schema.columns.len());
    for ((column, field), text) in schema.columns.iter().zip(&raw).zip(&unquoted) {
        let Some(field) = field else {
            values.push(Value::Null);
            continue;
        };
        let fault = |reason: String| RowFault { field: Some(column.name.clone()), reason };
        let text_of_field = field.get();
        values.push(match column.column_type {
            ColumnType::Text => Value::Text(text.as_deref().unwrap_or_default()),
            ColumnType::Int32 => Value::Int32(whole(text_of_field, "int32").map_err(fault)?),
            ColumnType::Int64 => Value::Int64(whole(text_of_field, "int64").map_err(fault)?),
            ColumnType::TimestampMs => {
                Value::TimestampMs(whole(text_of_field, "timestamp-ms").map_err(fault)?)
            }
            ColumnType::Float64 => Value::Float64(
                text_of_field
                    .parse()
                    .map_err(|_| fault(format!("expected a number, found {text_of_field}")))?,
            ),
            ColumnType::Boolean => match text_of_field {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                other => return Err(fault(format!("expected true or false, found {other}"))),
            },
            ColumnType::TextList => {
                let items = next_list.next().ok_or_else(|| fault("list not read".into()))?;
                Value::TextList(TextList::all(items))
            }
            ColumnType::Json => Value::Json(text_of_field),
        });
    }
    batch.push_row(input, key, &values).map_err(|(field, reason)| RowFault { field: Some(field), reason })
}

fn string(raw: &RawValue) -> Result<String, String> {
    let text = raw.get();
    if !text.starts_with('"') {
        return Err(format!("expected a string, found {text}"));
    }
    serde_json::from_str(text).map_err(|error| format!("not a JSON string: {error}"))
}

fn whole<T: TryFrom<i64>>(text: &str, column_type: &str) -> Result<T, String> {
    let wide: i64 =
        text.parse().map_err(|_| format!("{text} is not a whole number that fits {column_type}"))?;
    T::try_from(wide).map_err(|_| format!("{text} is not a whole number that fits {column_type}"))
}

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
    use std::sync::Arc;

    use super::super::schema::OutputSchema;
    use super::*;

    fn every_type() -> Arc<OutputSchema> {
        let text = r#"{"fields":[
            {"name":"id","type":"string","nullable":false},{"name":"i32","type":"int32","nullable":true},
            {"name":"i64","type":"int64","nullable":true},{"name":"f64","type":"float64","nullable":true},
            {"name":"flag","type":"bool","nullable":true},{"name":"at","type":"timestamp-ms","nullable":true},
            {"name":"tags","type":"list-string","nullable":true},{"name":"doc","type":"json","nullable":true}]}"#;
        Arc::new(OutputSchema::from_v0_2_json("rows".into(), text).expect("schema"))
    }

    #[test]
    fn every_type_reads_and_missing_or_null_fields_are_null() {
        let mut batch = RowBatch::empty(every_type());
        let full = br#"{"id":"a\u00e9","i32":-5,"i64":9007199254740993,"f64":2.5e3,"flag":false,"at":1700000000000,"tags":["x","y"],"doc":{"k": [1, null]}}"#;
        push_json_row(&mut batch, 0, None, full).expect("full row");
        push_json_row(&mut batch, 1, None, br#"{"id":"b","i32":null,"doc":null}"#).expect("sparse row");
        assert_eq!(batch.value(0, 0), Value::Text("aé"));
        assert_eq!(batch.value(0, 2), Value::Int64(9_007_199_254_740_993));
        assert_eq!(batch.value(0, 3), Value::Float64(2500.0));
        assert_eq!(batch.value(0, 4), Value::Boolean(false));
        assert_eq!(batch.value(0, 5), Value::TimestampMs(1_700_000_000_000));
        assert_eq!(batch.value(0, 7), Value::Json(r#"{"k": [1, null]}"#));
        let Value::TextList(tags) = batch.value(0, 6) else { panic!("tags") };
        assert_eq!(tags.iter().collect::<Vec<_>>(), ["x", "y"]);
        for column in 1..8 {
            assert_eq!(batch.value(1, column), Value::Null, "column {column}");
        }
    }

    #[test]
    fn a_wrong_typed_value_fails_its_row_naming_the_field() {
        let mut batch = RowBatch::empty(every_type());
        let cases: [(&[u8], &str); 7] = [
            (br#"{"id":7}"#, "id"),
            (br#"{"id":"a","i32":1.5}"#, "i32"),
            (br#"{"id":"a","i32":4294967296}"#, "i32"),
            (br#"{"id":"a","i64":"12"}"#, "i64"),
            (br#"{"id":"a","flag":"yes"}"#, "flag"),
            (br#"{"id":"a","tags":[1]}"#, "tags"),
            (br#"{"id":"a","at":1.25}"#, "at"),
        ];
        for (row, field) in cases {
            let fault = push_json_row(&mut batch, 0, None, row).unwrap_err();
            assert_eq!(fault.field.as_deref(), Some(field), "{}", String::from_utf8_lossy(row));
        }
        assert!(push_json_row(&mut batch, 0, None, b"[1]").unwrap_err().field.is_none());
        assert!(batch.is_empty(), "no half rows are left behind");
    }

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
