//! Output schemas: the columns a plugin declares for one of its outputs, as an Arrow schema.
//!
//! A plugin describes each output in `info()` as JSON text,
//! `{"fields":[{"name":"id","type":"string","nullable":false}, ...]}` (see `output-info` in
//! `wit/transform.wit`). The sink turns that text into the Arrow schema its Parquet files are
//! written with, so the column list comes from the plugin and never from host code.
//!
//! `json` columns are Arrow `Utf8` holding the value's JSON text. They are marked with the
//! canonical `arrow.json` extension name so the row encoder knows to keep a nested value as text
//! instead of refusing it, and so Arrow readers that know the extension see it; Parquet still
//! stores them as plain strings, which every engine (Athena included) reads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use serde::Deserialize;

/// The field metadata key of an Arrow extension type's name (Arrow's columnar format spec; the
/// `arrow` facade does not re-export arrow-schema's constant).
const EXTENSION_TYPE_NAME_KEY: &str = "ARROW:extension:name";

/// The extension name that marks a `Utf8` column as holding JSON text.
pub const JSON_EXTENSION_NAME: &str = "arrow.json";

/// The lineage column with the Kafka topic a row's input record was read from.
pub const LINEAGE_TOPIC: &str = "kafka_topic";
/// The lineage column with the Kafka partition a row's input record was read from.
pub const LINEAGE_PARTITION: &str = "kafka_partition";
/// The lineage column with the Kafka offset of a row's input record.
pub const LINEAGE_OFFSET: &str = "kafka_offset";
/// The lineage column with the plugin that made the row, as `name@version`, so a table read
/// across a hot swap tells which rows each version wrote.
pub const LINEAGE_PLUGIN_VERSION: &str = "plugin_version";
/// How many lineage columns [`with_lineage`] appends.
pub const LINEAGE_COLUMNS: usize = 4;

/// The column types a plugin may declare, as the contract spells them, for error messages.
pub const ALLOWED_TYPES: &str = "string, int32, int64, float64, bool, timestamp-ms, list-string, json";

/// The time zone of `timestamp-ms` columns: the values are instants, not wall-clock times.
const TIMESTAMP_ZONE: &str = "UTC";

/// Why an output schema cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "the output schema is not JSON of the form \
         {{\"fields\":[{{\"name\":…,\"type\":…,\"nullable\":…}}, …]}}: {0}"
    )]
    Malformed(#[source] serde_json::Error),
    #[error("the output schema declares no fields; an output needs at least one column")]
    NoFields,
    #[error("field {position} of the output schema has an empty name")]
    EmptyName { position: usize },
    #[error("field `{field}` has type `{found}`; allowed types are {ALLOWED_TYPES}")]
    UnknownType { field: String, found: String },
    #[error("field `{field}` is declared more than once; each column needs its own name")]
    DuplicateField { field: String },
    #[error(
        "field `{field}` uses a name the sink reserves for its lineage columns \
         ({LINEAGE_TOPIC}, {LINEAGE_PARTITION}, {LINEAGE_OFFSET}, {LINEAGE_PLUGIN_VERSION}); rename it in the plugin"
    )]
    ReservedName { field: String },
}

/// One column of a plugin output, as the contract spells it.
#[derive(Debug, Deserialize)]
struct DeclaredField {
    name: String,
    #[serde(rename = "type")]
    column_type: String,
    nullable: bool,
}

/// The whole schema text; keys other than `fields` are ignored so the contract can grow.
#[derive(Debug, Deserialize)]
struct DeclaredSchema {
    fields: Vec<DeclaredField>,
}

/// Parses a plugin's output schema text into the Arrow schema of that output's rows.
///
/// Types map as: string → `Utf8`; int32 → `Int32`; int64 → `Int64`; float64 → `Float64`;
/// bool → `Boolean`; timestamp-ms → `Timestamp(Millisecond, "UTC")`; list-string →
/// `List<Utf8>`; json → `Utf8` marked `arrow.json`. Field order and nullability are kept.
///
/// # Errors
///
/// [`SchemaError`] when the text is not the contract's JSON shape, declares no fields, or a field
/// has an empty, duplicate or reserved name or a type outside [`ALLOWED_TYPES`]. The message
/// names the field, so a load failure points at the plugin's declaration.
pub fn parse_output_schema(text: &str) -> Result<Schema, SchemaError> {
    let declared: DeclaredSchema = serde_json::from_str(text).map_err(SchemaError::Malformed)?;
    if declared.fields.is_empty() {
        return Err(SchemaError::NoFields);
    }
    let mut seen = HashSet::with_capacity(declared.fields.len());
    let mut fields = Vec::with_capacity(declared.fields.len());
    for (position, field) in declared.fields.into_iter().enumerate() {
        if field.name.is_empty() {
            return Err(SchemaError::EmptyName { position });
        }
        if is_lineage_name(&field.name) {
            return Err(SchemaError::ReservedName { field: field.name });
        }
        if !seen.insert(field.name.clone()) {
            return Err(SchemaError::DuplicateField { field: field.name });
        }
        fields.push(arrow_field(field)?);
    }
    Ok(Schema::new(fields))
}

/// The Arrow field for one declared column.
fn arrow_field(declared: DeclaredField) -> Result<Field, SchemaError> {
    let DeclaredField { name, column_type, nullable } = declared;
    let data_type = match column_type.as_str() {
        "string" | "json" => DataType::Utf8,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "float64" => DataType::Float64,
        "bool" => DataType::Boolean,
        "timestamp-ms" => DataType::Timestamp(TimeUnit::Millisecond, Some(TIMESTAMP_ZONE.into())),
        "list-string" => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
        _ => return Err(SchemaError::UnknownType { field: name, found: column_type }),
    };
    let field = Field::new(name, data_type, nullable);
    Ok(if column_type == "json" {
        field.with_metadata(HashMap::from([(
            EXTENSION_TYPE_NAME_KEY.to_owned(),
            JSON_EXTENSION_NAME.to_owned(),
        )]))
    } else {
        field
    })
}

/// Whether `field` holds JSON text (a contract `json` column).
pub fn is_json_column(field: &Field) -> bool {
    field.data_type() == &DataType::Utf8 && field.extension_type_name() == Some(JSON_EXTENSION_NAME)
}

/// `schema` followed by the lineage columns the sink fills from each record's Kafka coordinates
/// and the plugin that made the row: `kafka_topic` (Utf8), `kafka_partition` (Int32),
/// `kafka_offset` (Int64) and `plugin_version` (Utf8), never null.
///
/// They let a query trace any row back to the input record it came from, and let a reader of
/// the table check that a replay rewrote a file rather than adding to it.
///
/// # Errors
///
/// [`SchemaError::ReservedName`] when `schema` already has a column with a lineage name (for
/// example when lineage was added twice).
pub fn with_lineage(schema: &Schema) -> Result<Schema, SchemaError> {
    if let Some(field) = schema.fields().iter().find(|field| is_lineage_name(field.name())) {
        return Err(SchemaError::ReservedName { field: field.name().clone() });
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|field| field.as_ref().clone()).collect();
    fields.extend(lineage_fields());
    Ok(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Whether `schema` ends with the lineage columns [`with_lineage`] appends.
pub fn has_lineage(schema: &Schema) -> bool {
    let fields = schema.fields();
    let Some(first) = fields.len().checked_sub(LINEAGE_COLUMNS) else {
        return false;
    };
    fields[first..].iter().zip(lineage_fields()).all(|(field, lineage)| field.as_ref() == &lineage)
}

/// The lineage columns, in the order they are appended.
fn lineage_fields() -> [Field; LINEAGE_COLUMNS] {
    [
        Field::new(LINEAGE_TOPIC, DataType::Utf8, false),
        Field::new(LINEAGE_PARTITION, DataType::Int32, false),
        Field::new(LINEAGE_OFFSET, DataType::Int64, false),
        Field::new(LINEAGE_PLUGIN_VERSION, DataType::Utf8, false),
    ]
}

fn is_lineage_name(name: &str) -> bool {
    [LINEAGE_TOPIC, LINEAGE_PARTITION, LINEAGE_OFFSET, LINEAGE_PLUGIN_VERSION].contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(fields: &str) -> String {
        format!(r#"{{"fields":[{fields}]}}"#)
    }

    #[test]
    fn every_contract_type_maps_to_its_arrow_type() {
        let text = declared(
            r#"{"name":"s","type":"string","nullable":false},
               {"name":"i","type":"int32","nullable":true},
               {"name":"l","type":"int64","nullable":true},
               {"name":"f","type":"float64","nullable":true},
               {"name":"b","type":"bool","nullable":true},
               {"name":"t","type":"timestamp-ms","nullable":false},
               {"name":"c","type":"list-string","nullable":false},
               {"name":"j","type":"json","nullable":true}"#,
        );
        let schema = parse_output_schema(&text).unwrap();
        let types: Vec<&DataType> = schema.fields().iter().map(|field| field.data_type()).collect();
        assert_eq!(
            types,
            [
                &DataType::Utf8,
                &DataType::Int32,
                &DataType::Int64,
                &DataType::Float64,
                &DataType::Boolean,
                &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                &DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
                &DataType::Utf8,
            ]
        );
        let nullable: Vec<bool> = schema.fields().iter().map(|field| field.is_nullable()).collect();
        assert_eq!(nullable, [false, true, true, true, true, false, false, true]);
    }

    #[test]
    fn only_json_columns_are_marked_as_json() {
        let text = declared(
            r#"{"name":"text","type":"string","nullable":true},
               {"name":"doc","type":"json","nullable":true}"#,
        );
        let schema = parse_output_schema(&text).unwrap();
        assert!(!is_json_column(schema.field(0)));
        assert!(is_json_column(schema.field(1)));
    }

    #[test]
    fn an_unknown_type_names_the_field_and_the_allowed_types() {
        let text = declared(r#"{"name":"amount","type":"decimal","nullable":true}"#);
        let message = parse_output_schema(&text).unwrap_err().to_string();
        assert!(message.contains("`amount`"), "{message}");
        assert!(message.contains("`decimal`"), "{message}");
        assert!(message.contains(ALLOWED_TYPES), "{message}");
    }

    #[test]
    fn malformed_and_empty_schemas_are_refused() {
        for text in ["", "[]", r#"{"fields":{}}"#, r#"{"fields":[{"name":"a","type":"string"}]}"#] {
            assert!(matches!(parse_output_schema(text), Err(SchemaError::Malformed(_))), "{text}");
        }
        assert!(matches!(parse_output_schema(&declared("")), Err(SchemaError::NoFields)));
        let empty_name = declared(r#"{"name":"","type":"string","nullable":true}"#);
        assert!(matches!(parse_output_schema(&empty_name), Err(SchemaError::EmptyName { position: 0 })));
    }

    #[test]
    fn duplicate_and_reserved_names_are_refused() {
        let duplicate = declared(
            r#"{"name":"a","type":"string","nullable":true},
               {"name":"a","type":"int32","nullable":true}"#,
        );
        assert!(matches!(
            parse_output_schema(&duplicate),
            Err(SchemaError::DuplicateField { field }) if field == "a"
        ));
        let reserved = declared(r#"{"name":"kafka_offset","type":"int64","nullable":true}"#);
        assert!(matches!(
            parse_output_schema(&reserved),
            Err(SchemaError::ReservedName { field }) if field == "kafka_offset"
        ));
    }

    #[test]
    fn lineage_columns_follow_the_plugin_columns_and_are_never_null() {
        let schema =
            parse_output_schema(&declared(r#"{"name":"a","type":"string","nullable":true}"#)).unwrap();
        assert!(!has_lineage(&schema));
        let with = with_lineage(&schema).unwrap();
        let columns: Vec<(&str, &DataType, bool)> = with
            .fields()
            .iter()
            .map(|field| (field.name().as_str(), field.data_type(), field.is_nullable()))
            .collect();
        assert_eq!(
            columns,
            [
                ("a", &DataType::Utf8, true),
                ("kafka_topic", &DataType::Utf8, false),
                ("kafka_partition", &DataType::Int32, false),
                ("kafka_offset", &DataType::Int64, false),
                ("plugin_version", &DataType::Utf8, false),
            ]
        );
        assert!(has_lineage(&with));
        assert!(matches!(with_lineage(&with), Err(SchemaError::ReservedName { .. })));
    }
}
