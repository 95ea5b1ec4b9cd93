//! Rows: typed plugin rows turned into one Arrow `RecordBatch`, column by column.
//!
//! The rows arrive typed ([`RowRef`]s into the batches a plugin returned), so building the
//! batch copies values into Arrow builders and parses nothing. A row is left out, and
//! reported for the dead letters, only when it cannot fit the table: it came from a plugin
//! version whose declaration of the output differs from the one the table was set up with (a
//! column of another type, or a required column it lacks or leaves null).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Array, Int32Builder, Int64Array, Int64Builder,
    ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;

use super::schema::{LINEAGE_COLUMNS, has_lineage};
use crate::plugin::rows::{RowRef, Value};
use crate::plugin::schema::{ColumnType, OutputSchema};

/// One row bound for the table, with the Kafka coordinates of the input record it came from
/// (they fill the lineage columns when the schema has them).
#[derive(Debug, Clone, Copy)]
pub struct TableRow<'a> {
    pub row: &'a RowRef,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The version of the plugin that emitted the row.
    pub plugin_version: &'a str,
}

/// A row left out of the batch because it does not fit the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The row's position in the slice given to [`RowEncoder::encode`].
    pub index: usize,
    /// Why, naming the column.
    pub reason: String,
}

/// The result of encoding one batch of rows.
#[derive(Debug, Clone)]
pub struct EncodedRows {
    /// The rows that fit, in their original order.
    pub batch: RecordBatch,
    /// The rows that do not, by ascending index.
    pub rejected: Vec<RowError>,
}

/// Why a batch could not be encoded at all (as opposed to single rows being rejected).
#[derive(Debug, thiserror::Error)]
pub enum RowsError {
    #[error("the table's columns do not match the output's declaration: {0}")]
    Declaration(String),
    #[error("cannot assemble the record batch: {0}")]
    Batch(#[source] ArrowError),
}

/// Encodes rows of one output into `RecordBatch`es of one schema.
///
/// Built once per table and reused for every batch.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    /// The schema of the batches produced.
    schema: SchemaRef,
    /// The output's columns as the table was set up with them.
    declared: Arc<OutputSchema>,
    lineage: bool,
}

/// Where each table column is found in rows of one declaration, or why they cannot fill it.
enum ColumnMap {
    /// The declaration is the table's own: column `i` is column `i`.
    Same,
    /// Column `i` is the row's column `positions[i]` (`None`: absent, so null).
    Moved(Vec<Option<usize>>),
    Unfit(String),
}

impl RowEncoder {
    /// An encoder for batches of `schema`, the Arrow form of `declared` (see
    /// [`arrow_schema`](super::schema::arrow_schema)), optionally extended by
    /// [`with_lineage`](super::schema::with_lineage).
    ///
    /// # Errors
    /// [`RowsError::Declaration`] when `schema` is not `declared`'s.
    pub fn new(schema: SchemaRef, declared: Arc<OutputSchema>) -> Result<Self, RowsError> {
        let lineage = has_lineage(&schema);
        let plugin_columns = schema.fields().len() - if lineage { LINEAGE_COLUMNS } else { 0 };
        let names_match = plugin_columns == declared.columns.len()
            && schema
                .fields()
                .iter()
                .zip(&declared.columns)
                .all(|(field, column)| field.name() == &column.name);
        if !names_match {
            return Err(RowsError::Declaration(format!(
                "{} columns in the table, {} declared by output `{}`",
                plugin_columns,
                declared.columns.len(),
                declared.name
            )));
        }
        Ok(RowEncoder { schema, declared, lineage })
    }

    /// The schema of the batches [`Self::encode`] produces.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Encodes `records`; those that do not fit the table are left out and reported.
    ///
    /// # Errors
    /// [`RowsError`] only when the batch as a whole cannot be built, which means a bug rather
    /// than a bad row.
    pub fn encode(&self, records: &[TableRow<'_>]) -> Result<EncodedRows, RowsError> {
        let maps = self.column_maps(records);
        let mut rejected = Vec::new();
        let mut kept: Vec<(usize, &ColumnMap)> = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let map = maps.iter().find(|(batch, _)| same_declaration(batch, record.row)).map(|(_, map)| map);
            let map = map.unwrap_or(&ColumnMap::Same);
            match self.misfit(record.row, map) {
                Some(reason) => rejected.push(RowError { index, reason }),
                None => kept.push((index, map)),
            }
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for (position, column) in self.declared.columns.iter().enumerate() {
            let data_type = self.schema.field(position).data_type();
            let mut builder = ColumnBuilder::new(column.column_type, data_type, kept.len());
            for &(index, map) in &kept {
                let row = records[index].row;
                let value = match map {
                    ColumnMap::Same => row.value(position),
                    ColumnMap::Moved(positions) => {
                        positions[position].map_or(Value::Null, |at| row.value(at))
                    }
                    ColumnMap::Unfit(_) => Value::Null,
                };
                builder.append(value);
            }
            columns.push(builder.finish());
        }
        if self.lineage {
            let kept_records = kept.iter().map(|&(index, _)| &records[index]);
            columns.extend(lineage_columns(kept_records));
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(RowsError::Batch)?;
        Ok(EncodedRows { batch, rejected })
    }

    /// How rows of each declaration among `records` fill the table; declarations are compared
    /// by pointer first, since every row of one plugin version shares its declaration.
    fn column_maps<'r>(&self, records: &[TableRow<'r>]) -> Vec<(&'r RowRef, ColumnMap)> {
        let mut maps: Vec<(&'r RowRef, ColumnMap)> = Vec::new();
        for record in records {
            if maps.iter().any(|(seen, _)| same_declaration(seen, record.row)) {
                continue;
            }
            let theirs = record.row.batch().schema();
            let map = if Arc::ptr_eq(theirs, &self.declared) || **theirs == *self.declared {
                ColumnMap::Same
            } else {
                self.moved_columns(theirs)
            };
            maps.push((record.row, map));
        }
        maps
    }

    fn moved_columns(&self, theirs: &OutputSchema) -> ColumnMap {
        let mut positions = Vec::with_capacity(self.declared.columns.len());
        for column in &self.declared.columns {
            match theirs.position(&column.name) {
                Some(at) if theirs.columns[at].column_type == column.column_type => positions.push(Some(at)),
                Some(at) => {
                    return ColumnMap::Unfit(format!(
                        "column `{}` is {} in the table but {} in this plugin version's output",
                        column.name, column.column_type, theirs.columns[at].column_type
                    ));
                }
                None if column.nullable => positions.push(None),
                None => {
                    return ColumnMap::Unfit(format!(
                        "this plugin version's output lacks the table's required column `{}`",
                        column.name
                    ));
                }
            }
        }
        ColumnMap::Moved(positions)
    }

    /// Why `row` cannot go in the table: its declaration does not fit, or a required column is null.
    fn misfit(&self, row: &RowRef, map: &ColumnMap) -> Option<String> {
        if let ColumnMap::Unfit(reason) = map {
            return Some(reason.clone());
        }
        let nulls: Vec<&str> = self
            .declared
            .columns
            .iter()
            .enumerate()
            .filter(|(_, column)| !column.nullable)
            .filter(|&(position, _)| {
                let value = match map {
                    ColumnMap::Moved(positions) => {
                        positions[position].map_or(Value::Null, |at| row.value(at))
                    }
                    _ => row.value(position),
                };
                matches!(value, Value::Null)
            })
            .map(|(_, column)| column.name.as_str())
            .collect();
        (!nulls.is_empty()).then(|| format!("required field(s) missing or null: {}", nulls.join(", ")))
    }
}

fn same_declaration(a: &RowRef, b: &RowRef) -> bool {
    Arc::ptr_eq(a.batch().schema(), b.batch().schema())
}

/// A builder for one column.
enum ColumnBuilder {
    Text(StringBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    TimestampMs(TimestampMillisecondBuilder),
    TextList(ListBuilder<StringBuilder>),
}

impl ColumnBuilder {
    /// A builder for a column of `column_type`; `data_type` carries the timestamp's zone.
    fn new(column_type: ColumnType, data_type: &DataType, rows: usize) -> Self {
        match column_type {
            ColumnType::Text | ColumnType::Json => {
                ColumnBuilder::Text(StringBuilder::with_capacity(rows, rows * 16))
            }
            ColumnType::Int32 => ColumnBuilder::Int32(Int32Builder::with_capacity(rows)),
            ColumnType::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(rows)),
            ColumnType::Float64 => ColumnBuilder::Float64(Float64Builder::with_capacity(rows)),
            ColumnType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(rows)),
            ColumnType::TimestampMs => ColumnBuilder::TimestampMs(
                TimestampMillisecondBuilder::with_capacity(rows).with_data_type(data_type.clone()),
            ),
            ColumnType::TextList => {
                ColumnBuilder::TextList(ListBuilder::with_capacity(StringBuilder::new(), rows))
            }
        }
    }

    /// Appends `value`; a value of another type than the column's is a null (the encoder
    /// never passes one: declarations are matched first).
    fn append(&mut self, value: Value<'_>) {
        match (self, value) {
            (ColumnBuilder::Text(builder), Value::Text(text) | Value::Json(text)) => {
                builder.append_value(text)
            }
            (ColumnBuilder::Int32(builder), Value::Int32(number)) => builder.append_value(number),
            (ColumnBuilder::Int64(builder), Value::Int64(number)) => builder.append_value(number),
            (ColumnBuilder::Float64(builder), Value::Float64(number)) => builder.append_value(number),
            (ColumnBuilder::Boolean(builder), Value::Boolean(flag)) => builder.append_value(flag),
            (ColumnBuilder::TimestampMs(builder), Value::TimestampMs(millis)) => builder.append_value(millis),
            (ColumnBuilder::TextList(builder), Value::TextList(items)) => {
                for item in items.iter() {
                    builder.values().append_value(item);
                }
                builder.append(true);
            }
            (ColumnBuilder::Text(builder), _) => builder.append_null(),
            (ColumnBuilder::Int32(builder), _) => builder.append_null(),
            (ColumnBuilder::Int64(builder), _) => builder.append_null(),
            (ColumnBuilder::Float64(builder), _) => builder.append_null(),
            (ColumnBuilder::Boolean(builder), _) => builder.append_null(),
            (ColumnBuilder::TimestampMs(builder), _) => builder.append_null(),
            (ColumnBuilder::TextList(builder), _) => builder.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            ColumnBuilder::Text(mut builder) => Arc::new(builder.finish()),
            ColumnBuilder::Int32(mut builder) => Arc::new(builder.finish()),
            ColumnBuilder::Int64(mut builder) => Arc::new(builder.finish()),
            ColumnBuilder::Float64(mut builder) => Arc::new(builder.finish()),
            ColumnBuilder::Boolean(mut builder) => Arc::new(builder.finish()),
            ColumnBuilder::TimestampMs(mut builder) => Arc::new(builder.finish()),
            ColumnBuilder::TextList(mut builder) => Arc::new(builder.finish()),
        }
    }
}

fn lineage_columns<'a>(
    records: impl Iterator<Item = &'a TableRow<'a>> + Clone,
) -> [ArrayRef; LINEAGE_COLUMNS] {
    let topics: StringArray = records.clone().map(|record| Some(record.topic)).collect();
    let partitions: Int32Array = records.clone().map(|record| record.partition).collect();
    let offsets: Int64Array = records.clone().map(|record| record.offset).collect();
    let versions: StringArray = records.map(|record| Some(record.plugin_version)).collect();
    [Arc::new(topics), Arc::new(partitions), Arc::new(offsets), Arc::new(versions)]
}

#[cfg(test)]
pub(crate) mod tests {
    use arrow::array::{Array, AsArray, ListArray};
    use arrow::datatypes::{Float64Type, Int32Type, Int64Type, TimestampMillisecondType};

    use super::super::schema::{arrow_schema, with_lineage};
    use super::super::test_schema::EVERY_TYPE as SCHEMA;
    use super::*;
    use crate::plugin::push_json_row;
    use crate::plugin::rows::RowBatch;

    pub(crate) fn declared(text: &str) -> Arc<OutputSchema> {
        Arc::new(OutputSchema::from_v0_2_json("events".into(), text).unwrap())
    }

    fn encoder(lineage: bool) -> RowEncoder {
        let declared = declared(SCHEMA);
        let schema = arrow_schema(&declared).unwrap();
        let schema = if lineage { with_lineage(&schema).unwrap() } else { schema };
        RowEncoder::new(Arc::new(schema), declared).unwrap()
    }

    /// Typed rows read from JSON objects, as a 0.2.0 plugin's rows are.
    pub(crate) fn typed_rows(declared: &Arc<OutputSchema>, values: &[&str]) -> Vec<RowRef> {
        let mut batch = RowBatch::empty(declared.clone());
        for value in values {
            push_json_row(&mut batch, 0, None, value.as_bytes()).unwrap();
        }
        let batch = Arc::new(batch);
        (0..batch.len()).map(|row| RowRef::new(batch.clone(), row).unwrap()).collect()
    }

    fn records(rows: &[RowRef]) -> Vec<TableRow<'_>> {
        rows.iter()
            .enumerate()
            .map(|(index, row)| TableRow {
                row,
                topic: "events-raw",
                partition: 3,
                offset: 100 + index as i64,
                plugin_version: "1.0.0",
            })
            .collect()
    }

    const GOOD: &str = r#"{"dt":"2024-05-01","event":"open","tls":1,"asm_group_id":42,"score":0.5,"machine_open":true,"event_time":1714521600000,"categories":["a","b"],"custom_args":{"request_id":"r-1","n":[1,2.5,null]}}"#;
    const SPARSE: &str = r#"{"dt":"2024-05-02","event":"click","event_time":1714608000000,"categories":[],"custom_args":null}"#;

    #[test]
    fn every_column_type_encodes_and_nulls_stay_null() {
        let encoder = encoder(false);
        let rows = typed_rows(&encoder.declared, &[GOOD, SPARSE]);
        let encoded = encoder.encode(&records(&rows)).unwrap();
        assert!(encoded.rejected.is_empty(), "{:?}", encoded.rejected);
        let batch = &encoded.batch;
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(0).as_string::<i32>().value(1), "2024-05-02");
        assert_eq!(batch.column(2).as_primitive::<Int32Type>().value(0), 1);
        assert!(batch.column(2).is_null(1));
        assert_eq!(batch.column(3).as_primitive::<Int64Type>().value(0), 42);
        assert_eq!(batch.column(4).as_primitive::<Float64Type>().value(0), 0.5);
        assert!(batch.column(5).as_boolean().value(0));
        assert!(batch.column(5).is_null(1));
        assert_eq!(batch.column(6).as_primitive::<TimestampMillisecondType>().value(1), 1_714_608_000_000);
        let categories: &ListArray = batch.column(7).as_list();
        assert_eq!(categories.value(0).as_string::<i32>().iter().collect::<Vec<_>>(), [Some("a"), Some("b")]);
        assert_eq!(categories.value(1).len(), 0);
        let custom_args = batch.column(8).as_string::<i32>();
        assert_eq!(custom_args.value(0), r#"{"request_id":"r-1","n":[1,2.5,null]}"#);
        assert!(custom_args.is_null(1));
    }

    #[test]
    fn a_row_with_a_required_null_is_rejected_and_the_rest_encoded() {
        let encoder = encoder(true);
        let rows = typed_rows(
            &encoder.declared,
            &[GOOD, r#"{"event":"open","event_time":1,"categories":[]}"#, SPARSE],
        );
        let encoded = encoder.encode(&records(&rows)).unwrap();
        assert_eq!(
            encoded.rejected,
            [RowError { index: 1, reason: "required field(s) missing or null: dt".into() }]
        );
        let offsets = encoded.batch.column_by_name("kafka_offset").unwrap().as_primitive::<Int64Type>();
        assert_eq!(offsets.values(), &[100, 102]);
    }

    #[test]
    fn rows_of_another_declaration_fill_columns_by_name_or_are_rejected_naming_the_column() {
        let encoder = encoder(false);
        let reordered = declared(
            r#"{"fields":[{"name":"event","type":"string","nullable":false},{"name":"dt","type":"string","nullable":false},
                {"name":"event_time","type":"timestamp-ms","nullable":false},{"name":"categories","type":"list-string","nullable":false}]}"#,
        );
        let retyped = declared(
            r#"{"fields":[{"name":"dt","type":"string","nullable":false},{"name":"event","type":"string","nullable":false},
                {"name":"tls","type":"string","nullable":true},{"name":"event_time","type":"timestamp-ms","nullable":false},
                {"name":"categories","type":"list-string","nullable":false}]}"#,
        );
        let mut rows =
            typed_rows(&reordered, &[r#"{"event":"open","dt":"d1","event_time":5,"categories":["x"]}"#]);
        rows.extend(typed_rows(
            &retyped,
            &[r#"{"dt":"d2","event":"open","tls":"1","event_time":5,"categories":[]}"#],
        ));
        let encoded = encoder.encode(&records(&rows)).unwrap();
        assert_eq!(encoded.batch.num_rows(), 1);
        assert_eq!(encoded.batch.column(0).as_string::<i32>().value(0), "d1");
        assert!(encoded.batch.column(2).is_null(0), "tls is absent from the reordered declaration");
        assert_eq!(encoded.rejected.len(), 1);
        assert!(
            encoded.rejected[0].reason.contains("column `tls` is int32 in the table but text"),
            "{:?}",
            encoded.rejected
        );
    }

    #[test]
    fn lineage_columns_carry_each_records_coordinates() {
        let encoder = encoder(true);
        let rows = typed_rows(&encoder.declared, &[GOOD, SPARSE]);
        let mut input = records(&rows);
        input[1].topic = "other";
        input[1].partition = 7;
        input[1].plugin_version = "2.0.0";
        let encoded = encoder.encode(&input).unwrap();
        let batch = &encoded.batch;
        let topics = batch.column_by_name("kafka_topic").unwrap().as_string::<i32>();
        assert_eq!(topics.iter().collect::<Vec<_>>(), [Some("events-raw"), Some("other")]);
        let partitions = batch.column_by_name("kafka_partition").unwrap();
        assert_eq!(partitions.as_primitive::<Int32Type>().values(), &[3, 7]);
        let versions = batch.column_by_name("plugin_version").unwrap().as_string::<i32>();
        assert_eq!(versions.iter().collect::<Vec<_>>(), [Some("1.0.0"), Some("2.0.0")]);
    }

    #[test]
    fn no_records_make_an_empty_batch() {
        let encoder = encoder(true);
        let empty = encoder.encode(&[]).unwrap();
        assert_eq!(empty.batch.num_rows(), 0);
        assert_eq!(empty.batch.schema(), *encoder.schema());
    }

    #[test]
    fn a_table_of_other_columns_is_refused() {
        let declared = declared(SCHEMA);
        let other = declared_schema_without_last(&declared);
        assert!(RowEncoder::new(Arc::new(other), declared).is_err());
    }

    fn declared_schema_without_last(declared: &OutputSchema) -> arrow::datatypes::Schema {
        let schema = arrow_schema(declared).unwrap();
        let fields: Vec<_> = schema.fields().iter().take(schema.fields().len() - 1).cloned().collect();
        arrow::datatypes::Schema::new(fields)
    }
}
