//! The columns a plugin declares for each of its outputs, whatever contract version it speaks.
//!
//! Contract 0.3.0 declares them in WIT types; 0.2.0 declared them as JSON text,
//! `{"fields":[{"name":"id","type":"string","nullable":false}, ...]}`. Both become one
//! [`OutputSchema`], so sinks are written once, against it.

use std::collections::HashSet;

use serde::Deserialize;

/// The type of one output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Text,
    Int32,
    Int64,
    Float64,
    Boolean,
    /// Milliseconds since the Unix epoch.
    TimestampMs,
    TextList,
    /// Any JSON value, kept as its text.
    Json,
}

impl ColumnType {
    /// The name contract 0.3.0 gives the type.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Int32 => "int32",
            ColumnType::Int64 => "int64",
            ColumnType::Float64 => "float64",
            ColumnType::Boolean => "boolean",
            ColumnType::TimestampMs => "timestamp-ms",
            ColumnType::TextList => "text-list",
            ColumnType::Json => "json",
        }
    }

    /// The type a 0.2.0 schema names `name`.
    fn from_v0_2_name(name: &str) -> Option<Self> {
        Some(match name {
            "string" => ColumnType::Text,
            "int32" => ColumnType::Int32,
            "int64" => ColumnType::Int64,
            "float64" => ColumnType::Float64,
            "bool" => ColumnType::Boolean,
            "timestamp-ms" => ColumnType::TimestampMs,
            "list-string" => ColumnType::TextList,
            "json" => ColumnType::Json,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// The column types a 0.2.0 schema may name, as it spells them, for error messages.
pub const V0_2_TYPES: &str = "string, int32, int64, float64, bool, timestamp-ms, list-string, json";

/// One declared column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    pub column_type: ColumnType,
    pub nullable: bool,
}

/// A named output and its columns, in the order its rows carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSchema {
    pub name: String,
    pub columns: Vec<ColumnSpec>,
}

/// Why a declared output cannot be used.
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
    #[error("field `{field}` has type `{found}`; allowed types are {V0_2_TYPES}")]
    UnknownType { field: String, found: String },
    #[error("field `{field}` is declared more than once; each column needs its own name")]
    DuplicateField { field: String },
}

impl OutputSchema {
    /// Checks a declaration: at least one column, each with a name of its own.
    ///
    /// # Errors
    /// [`SchemaError`] naming the column at fault.
    pub fn new(name: String, columns: Vec<ColumnSpec>) -> Result<Self, SchemaError> {
        if columns.is_empty() {
            return Err(SchemaError::NoFields);
        }
        let mut seen = HashSet::with_capacity(columns.len());
        for (position, column) in columns.iter().enumerate() {
            if column.name.is_empty() {
                return Err(SchemaError::EmptyName { position });
            }
            if !seen.insert(column.name.as_str()) {
                return Err(SchemaError::DuplicateField { field: column.name.clone() });
            }
        }
        Ok(OutputSchema { name, columns })
    }

    /// Reads a 0.2.0 schema text.
    ///
    /// # Errors
    /// [`SchemaError`] when the text is not the 0.2.0 shape, or as for [`OutputSchema::new`].
    pub fn from_v0_2_json(name: String, text: &str) -> Result<Self, SchemaError> {
        /// Keys other than `fields` are ignored, as 0.2.0 hosts did.
        #[derive(Deserialize)]
        struct Declared {
            fields: Vec<DeclaredField>,
        }
        #[derive(Deserialize)]
        struct DeclaredField {
            name: String,
            #[serde(rename = "type")]
            column_type: String,
            nullable: bool,
        }
        let declared: Declared = serde_json::from_str(text).map_err(SchemaError::Malformed)?;
        let columns = declared
            .fields
            .into_iter()
            .map(|field| {
                let column_type = ColumnType::from_v0_2_name(&field.column_type).ok_or_else(|| {
                    SchemaError::UnknownType { field: field.name.clone(), found: field.column_type }
                })?;
                Ok(ColumnSpec { name: field.name, column_type, nullable: field.nullable })
            })
            .collect::<Result<Vec<_>, SchemaError>>()?;
        OutputSchema::new(name, columns)
    }

    /// The columns as JSON, `[{"name", "type", "nullable"}, ...]`, for `plugin info` and the
    /// admin API.
    pub fn columns_json(&self) -> serde_json::Value {
        self.columns
            .iter()
            .map(|column| {
                serde_json::json!({"name": column.name, "type": column.column_type.name(), "nullable": column.nullable})
            })
            .collect()
    }

    /// The position of column `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v0_2_schema_reads_every_type_in_order() {
        let text = r#"{"fields":[
            {"name":"s","type":"string","nullable":false},{"name":"i","type":"int32","nullable":true},
            {"name":"l","type":"int64","nullable":true},{"name":"f","type":"float64","nullable":true},
            {"name":"b","type":"bool","nullable":true},{"name":"t","type":"timestamp-ms","nullable":true},
            {"name":"ls","type":"list-string","nullable":true},{"name":"j","type":"json","nullable":true}]}"#;
        let schema = OutputSchema::from_v0_2_json("rows".into(), text).expect("schema");
        let types: Vec<ColumnType> = schema.columns.iter().map(|c| c.column_type).collect();
        assert_eq!(
            types,
            [
                ColumnType::Text,
                ColumnType::Int32,
                ColumnType::Int64,
                ColumnType::Float64,
                ColumnType::Boolean,
                ColumnType::TimestampMs,
                ColumnType::TextList,
                ColumnType::Json
            ]
        );
        assert!(!schema.columns[0].nullable && schema.columns[1].nullable);
        assert_eq!(schema.position("ls"), Some(6));
    }

    #[test]
    fn bad_declarations_name_the_column() {
        let unknown = r#"{"fields":[{"name":"x","type":"decimal","nullable":true}]}"#;
        let message = OutputSchema::from_v0_2_json("o".into(), unknown).unwrap_err().to_string();
        assert!(message.contains("`x`") && message.contains("decimal"), "{message}");
        let twice = r#"{"fields":[{"name":"x","type":"int32","nullable":true},{"name":"x","type":"json","nullable":true}]}"#;
        assert!(matches!(
            OutputSchema::from_v0_2_json("o".into(), twice),
            Err(SchemaError::DuplicateField { .. })
        ));
        assert!(matches!(
            OutputSchema::from_v0_2_json("o".into(), r#"{"fields":[]}"#),
            Err(SchemaError::NoFields)
        ));
        assert!(matches!(OutputSchema::from_v0_2_json("o".into(), "{"), Err(SchemaError::Malformed(_))));
    }
}
