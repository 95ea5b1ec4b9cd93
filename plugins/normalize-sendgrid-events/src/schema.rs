//! Output schemas in the JSON form the host reads from `info()`.

use serde::Serialize;

/// One field of an output record, as declared to the host.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Column {
    pub name: &'static str,
    /// One of the contract's types: string, int32, int64, float64, bool, timestamp-ms,
    /// list-string, json.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub nullable: bool,
}

impl Column {
    pub const fn required(name: &'static str, kind: &'static str) -> Self {
        Column { name, kind, nullable: false }
    }

    pub const fn nullable(name: &'static str, kind: &'static str) -> Self {
        Column { name, kind, nullable: true }
    }
}

/// The schema text for `columns`: `{"fields":[{"name","type","nullable"}, ...]}`.
pub fn schema_json(columns: &[Column]) -> String {
    #[derive(Serialize)]
    struct Schema<'a> {
        fields: &'a [Column],
    }
    // Serializing static names and booleans cannot fail; an empty schema would be refused by
    // the host loudly rather than silently.
    serde_json::to_string(&Schema { fields: columns }).unwrap_or_default()
}

/// The top-level keys of a JSON object in the order they appear, to check that output
/// records list their fields in schema order.
#[cfg(test)]
pub fn top_level_keys(json: &[u8]) -> Vec<String> {
    use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

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
        let columns = [Column::required("mail_id", "string"), Column::nullable("categories", "json")];
        assert_eq!(
            schema_json(&columns),
            r#"{"fields":[{"name":"mail_id","type":"string","nullable":false},{"name":"categories","type":"json","nullable":true}]}"#
        );
    }

    #[test]
    fn keys_are_read_in_document_order() {
        assert_eq!(top_level_keys(br#"{"b":1,"a":{"z":2},"c":[3]}"#), vec!["b", "a", "c"]);
    }
}
