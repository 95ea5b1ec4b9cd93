//! Output schemas: the columns a plugin declares for each of its outputs in `info()`.
//!
//! The contract carries a schema as JSON text, `{"fields":[{"name","type","nullable"}, ...]}`
//! (see `output-info` in `wit/transform.wit`). A plugin lists an output's columns once, as a
//! `const` slice of [`Column`] next to the row type that writes them, and declares the output
//! with [`OutputInfo::new`]; the text is rendered here, so no plugin spells schema JSON by hand
//! and a column type the host does not know cannot be written. Row types must serialize their
//! fields in column order; [`top_level_keys`] lets a test check that.

use serde::Serialize;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::OutputInfo;

/// The type of a column, one of those the contract lists for `output-info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColumnType {
    String,
    Int32,
    Int64,
    Float64,
    Bool,
    /// Milliseconds since the Unix epoch, for engines that want a real timestamp column.
    TimestampMs,
    ListString,
    /// Any JSON value, stored as its text.
    Json,
}

/// One field of an output record, as declared to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// Whether a row may hold `null` for this column.
    pub nullable: bool,
}

impl Column {
    /// A column every row fills.
    pub const fn required(name: &'static str, column_type: ColumnType) -> Self {
        Column { name, column_type, nullable: false }
    }

    /// A column a row may leave `null`.
    pub const fn nullable(name: &'static str, column_type: ColumnType) -> Self {
        Column { name, column_type, nullable: true }
    }
}

impl OutputInfo {
    /// The output `name`, whose records have `columns` in that order.
    pub fn new(name: &str, columns: &[Column]) -> Self {
        OutputInfo { name: name.to_owned(), schema: schema_json(columns) }
    }
}

/// The schema text for `columns`: `{"fields":[{"name","type","nullable"}, ...]}`, compact.
pub fn schema_json(columns: &[Column]) -> String {
    #[derive(Serialize)]
    struct Schema<'a> {
        fields: &'a [Column],
    }
    // Serializing static names, unit variants and booleans cannot fail; an empty schema would
    // be refused by the host loudly rather than silently.
    serde_json::to_string(&Schema { fields: columns }).unwrap_or_default()
}

/// The top-level keys of a JSON object in the order they appear; empty when `json` is not an
/// object.
///
/// For tests checking that an output record lists its fields in its columns' order, which a
/// parsed `serde_json::Value` (whose maps are sorted) cannot show.
pub fn top_level_keys(json: &[u8]) -> Vec<String> {
    struct KeyOrder(Vec<String>);

    impl<'de> Deserialize<'de> for KeyOrder {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Keys;
            impl<'de> Visitor<'de> for Keys {
                type Value = KeyOrder;
                fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                    formatter.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyOrder, A::Error> {
                    let mut keys = Vec::new();
                    while let Some(key) = map.next_key::<String>()? {
                        map.next_value::<IgnoredAny>()?;
                        keys.push(key);
                    }
                    Ok(KeyOrder(keys))
                }
            }
            deserializer.deserialize_map(Keys)
        }
    }

    serde_json::from_slice::<KeyOrder>(json).map(|order| order.0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lists_columns_in_order() {
        let columns = [
            Column::required("mail_id", ColumnType::String),
            Column::nullable("categories", ColumnType::Json),
        ];
        assert_eq!(
            schema_json(&columns),
            r#"{"fields":[{"name":"mail_id","type":"string","nullable":false},{"name":"categories","type":"json","nullable":true}]}"#
        );
    }

    #[test]
    fn column_types_are_named_as_the_contract_names_them() {
        let types = [
            ColumnType::String,
            ColumnType::Int32,
            ColumnType::Int64,
            ColumnType::Float64,
            ColumnType::Bool,
            ColumnType::TimestampMs,
            ColumnType::ListString,
            ColumnType::Json,
        ];
        let names: Vec<String> =
            types.iter().map(|column_type| serde_json::to_string(column_type).unwrap()).collect();
        assert_eq!(
            names,
            [
                "\"string\"",
                "\"int32\"",
                "\"int64\"",
                "\"float64\"",
                "\"bool\"",
                "\"timestamp-ms\"",
                "\"list-string\"",
                "\"json\""
            ]
        );
    }

    #[test]
    fn output_info_carries_the_name_and_the_rendered_schema() {
        let info = OutputInfo::new("events", &[Column::required("dt", ColumnType::String)]);
        assert_eq!(info.name, "events");
        assert_eq!(info.schema, r#"{"fields":[{"name":"dt","type":"string","nullable":false}]}"#);
    }

    #[test]
    fn keys_are_read_in_document_order() {
        assert_eq!(top_level_keys(br#"{"b":1,"a":{"z":2},"c":[3]}"#), vec!["b", "a", "c"]);
    }

    #[test]
    fn anything_but_an_object_has_no_keys() {
        for json in [&b"[1]"[..], b"\"a\"", b"{", b""] {
            assert_eq!(top_level_keys(json), Vec::<String>::new());
        }
    }
}
