//! Output schemas: the columns a plugin declares for one of its outputs, as an Arrow schema.
//!
//! A plugin declares each output's columns in `info()` (see `output-info` in
//! `wit/transform.wit`). The sink turns that declaration into the Arrow schema its Parquet files
//! are written with, so the column list comes from the plugin and never from host code.
//!
//! `json` columns are Arrow `Utf8` holding the value's JSON text. They are marked with the
//! canonical `arrow.json` extension name so the row encoder knows to keep a nested value as text
//! instead of refusing it, and so Arrow readers that know the extension see it; Parquet still
//! stores them as plain strings, which every engine (Athena included) reads.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::plugin::schema::{ColumnSpec, ColumnType, OutputSchema, SchemaError as DeclarationError};

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

/// The time zone of `timestamp-ms` columns: the values are instants, not wall-clock times.
const TIMESTAMP_ZONE: &str = "UTC";

/// Why an output cannot be written as a table.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Declared(#[from] DeclarationError),
    #[error(
        "field `{field}` uses a name the sink reserves for its lineage columns \
         ({LINEAGE_TOPIC}, {LINEAGE_PARTITION}, {LINEAGE_OFFSET}, {LINEAGE_PLUGIN_VERSION}); rename it in the plugin"
    )]
    ReservedName { field: String },
}

/// The Arrow schema of an output's rows.
///
/// Types map as: text → `Utf8`; int32 → `Int32`; int64 → `Int64`; float64 → `Float64`;
/// boolean → `Boolean`; timestamp-ms → `Timestamp(Millisecond, "UTC")`; text-list →
/// `List<Utf8>`; json → `Utf8` marked `arrow.json`. Column order and nullability are kept.
///
/// # Errors
/// [`SchemaError::ReservedName`] when a column takes a lineage column's name.
pub fn arrow_schema(declared: &OutputSchema) -> Result<Schema, SchemaError> {
    let mut fields = Vec::with_capacity(declared.columns.len());
    for column in &declared.columns {
        if is_lineage_name(&column.name) {
            return Err(SchemaError::ReservedName { field: column.name.clone() });
        }
        fields.push(arrow_field(column));
    }
    Ok(Schema::new(fields))
}

/// Reads a 0.2.0 schema text into the Arrow schema of that output's rows (for tests and tools
/// that start from the text).
///
/// # Errors
/// [`SchemaError`] when the text cannot be read or takes a lineage column's name.
pub fn parse_output_schema(text: &str) -> Result<Schema, SchemaError> {
    arrow_schema(&OutputSchema::from_v0_2_json(String::new(), text)?)
}

/// The Arrow field for one declared column.
fn arrow_field(column: &ColumnSpec) -> Field {
    let data_type = match column.column_type {
        ColumnType::Text | ColumnType::Json => DataType::Utf8,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::TimestampMs => DataType::Timestamp(TimeUnit::Millisecond, Some(TIMESTAMP_ZONE.into())),
        ColumnType::TextList => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
    };
    let field = Field::new(column.name.clone(), data_type, column.nullable);
    if column.column_type == ColumnType::Json {
        field.with_metadata(HashMap::from([(
            EXTENSION_TYPE_NAME_KEY.to_owned(),
            JSON_EXTENSION_NAME.to_owned(),
        )]))
    } else {
        field
    }
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
        assert!(message.contains(crate::plugin::schema::V0_2_TYPES), "{message}");
    }

    #[test]
    fn malformed_and_empty_schemas_are_refused() {
        for text in ["", "[]", r#"{"fields":{}}"#, r#"{"fields":[{"name":"a","type":"string"}]}"#] {
            assert!(
                matches!(
                    parse_output_schema(text),
                    Err(SchemaError::Declared(DeclarationError::Malformed(_)))
                ),
                "{text}"
            );
        }
        assert!(matches!(
            parse_output_schema(&declared("")),
            Err(SchemaError::Declared(DeclarationError::NoFields))
        ));
        let empty_name = declared(r#"{"name":"","type":"string","nullable":true}"#);
        assert!(matches!(
            parse_output_schema(&empty_name),
            Err(SchemaError::Declared(DeclarationError::EmptyName { position: 0 }))
        ));
    }

    #[test]
    fn duplicate_and_reserved_names_are_refused() {
        let duplicate = declared(
            r#"{"name":"a","type":"string","nullable":true},
               {"name":"a","type":"int32","nullable":true}"#,
        );
        assert!(matches!(
            parse_output_schema(&duplicate),
            Err(SchemaError::Declared(DeclarationError::DuplicateField { field })) if field == "a"
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
