//! Rows: typed plugin rows turned into one Arrow `RecordBatch`, column by column.
//!
//! The rows arrive typed ([`RowRef`]s into the batches a plugin returned), so building the
//! batch copies values into Arrow builders and parses nothing. A row is left out, and
//! reported for the dead letters, only when it cannot fit the table: it came from a plugin
//! version whose declaration of the output differs from the one the table was set up with (a
//! column of another type, or a required column it lacks or leaves null).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Int32Array, Int64Array, ListBuilder, NullBufferBuilder, PrimitiveArray,
    PrimitiveBuilder, RecordBatch, StringArray, StringBuilder,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float64Type, Int32Type, Int64Type, SchemaRef, TimestampMillisecondType,
};
use arrow::error::ArrowError;

use super::schema::{LINEAGE_COLUMNS, has_lineage};
use super::text_buffers::TEXT_BUFFERS;
use crate::plugin::rows::{ColumnData, ColumnValues, RowBatch, RowRef, Value};
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
    #[error("the rows do not fit one record batch: {0}")]
    TooLarge(String),
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
        let mut kept: Vec<usize> = Vec::with_capacity(records.len());
        let mut runs: Vec<Run<'_>> = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let map = maps.iter().find(|(batch, _)| same_declaration(batch, record.row)).map(|(_, map)| map);
            let map = map.unwrap_or(&ColumnMap::Same);
            let batch = record.row.batch();
            let run_of_batch = runs.last_mut().filter(|run| std::ptr::eq(run.batch, batch.as_ref()));
            // A batch of the table's own declaration whose required columns hold no null
            // (the chain has failed any record that left one null) fits row by row.
            let checked = run_of_batch.as_ref().is_some_and(|run| run.fits_whole);
            if !checked && let Some(reason) = self.misfit(record.row, map) {
                rejected.push(RowError { index, reason });
                continue;
            }
            kept.push(index);
            match run_of_batch {
                Some(run) => run.rows.push(record.row.row()),
                None => runs.push(Run {
                    batch: batch.as_ref(),
                    map,
                    rows: vec![record.row.row()],
                    fits_whole: matches!(map, ColumnMap::Same) && !has_required_nulls(batch),
                }),
            }
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for (position, column) in self.declared.columns.iter().enumerate() {
            let data_type = self.schema.field(position).data_type();
            columns.push(build_column(column.column_type, data_type, position, &runs, kept.len())?);
        }
        if self.lineage {
            let kept_records = kept.iter().map(|&index| &records[index]);
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

/// Kept rows that come one after another from the same plugin batch: their columns are read
/// once per run, and each column is built by a loop of its own type over the runs.
struct Run<'a> {
    batch: &'a RowBatch,
    map: &'a ColumnMap,
    /// The rows' positions in `batch`.
    rows: Vec<usize>,
    /// Every row of the batch fits the table, so rows need no check of their own.
    fits_whole: bool,
}

impl<'a> Run<'a> {
    /// The batch's data for table column `position`; `None` when this declaration lacks it.
    fn column(&self, position: usize) -> Option<&'a ColumnData> {
        let at = match self.map {
            ColumnMap::Same => Some(position),
            ColumnMap::Moved(positions) => positions.get(position).copied().flatten(),
            ColumnMap::Unfit(_) => None,
        };
        at.and_then(|at| self.batch.columns().get(at))
    }
}

/// Whether a required column of `batch`'s own declaration holds a null.
fn has_required_nulls(batch: &RowBatch) -> bool {
    batch
        .columns()
        .iter()
        .zip(&batch.schema().columns)
        .any(|(data, declared)| !declared.nullable && data.has_nulls())
}

/// The Arrow array of table column `position`, of `column_type` (`data_type` carries a
/// timestamp's zone), from `rows` rows in `runs`.
///
/// # Errors
/// [`RowsError::TooLarge`] past 2 GiB of text in one column.
fn build_column(
    column_type: ColumnType,
    data_type: &DataType,
    position: usize,
    runs: &[Run<'_>],
    rows: usize,
) -> Result<ArrayRef, RowsError> {
    Ok(match column_type {
        ColumnType::Text | ColumnType::Json => Arc::new(text_column(runs, position, rows)?),
        ColumnType::Int32 => Arc::new(primitive::<Int32Type>(runs, position, rows, |values| match values {
            ColumnValues::Int32(values) => Some(values),
            _ => None,
        })),
        ColumnType::Int64 => Arc::new(primitive::<Int64Type>(runs, position, rows, |values| match values {
            ColumnValues::Int64(values) => Some(values),
            _ => None,
        })),
        ColumnType::Float64 => {
            Arc::new(primitive::<Float64Type>(runs, position, rows, |values| match values {
                ColumnValues::Float64(values) => Some(values),
                _ => None,
            }))
        }
        ColumnType::TimestampMs => Arc::new(
            primitive::<TimestampMillisecondType>(runs, position, rows, |values| match values {
                ColumnValues::TimestampMs(values) => Some(values),
                _ => None,
            })
            .with_data_type(data_type.clone()),
        ),
        ColumnType::Boolean => {
            let mut builder = BooleanBuilder::with_capacity(rows);
            for run in runs {
                let data = run.column(position);
                match data.map(|data| (data.values(), data.nulls())) {
                    Some((ColumnValues::Boolean(values), nulls)) => {
                        for &row in &run.rows {
                            match values.get(row) {
                                Some(&flag) if nulls.is_none_or(|nulls| nulls.get(row) == Some(&false)) => {
                                    builder.append_value(flag);
                                }
                                _ => builder.append_null(),
                            }
                        }
                    }
                    _ => builder.append_nulls(run.rows.len()),
                }
            }
            Arc::new(builder.finish())
        }
        ColumnType::TextList => {
            let mut builder = ListBuilder::with_capacity(StringBuilder::new(), rows);
            for run in runs {
                let data = run.column(position);
                for &row in &run.rows {
                    match data.map(|data| data.value(row)) {
                        Some(Value::TextList(items)) => {
                            for item in items.iter() {
                                builder.values().append_value(item);
                            }
                            builder.append(true);
                        }
                        _ => builder.append_null(),
                    }
                }
            }
            Arc::new(builder.finish())
        }
    })
}

/// A text (or json) column: each run's texts copied a stretch of consecutive rows at a time
/// (one copy of their bytes, their offsets moved), nulls as the batches mark them.
///
/// # Errors
/// [`RowsError::TooLarge`] past 2 GiB of text, which Arrow's 32-bit offsets cannot address.
fn text_column<'a>(runs: &[Run<'a>], position: usize, rows: usize) -> Result<StringArray, RowsError> {
    let too_large = || RowsError::TooLarge("more than 2 GiB of text in one column of one batch".to_owned());
    let texts_of = |run: &Run<'a>| match run.column(position).map(|data| (data.values(), data.nulls())) {
        Some((ColumnValues::Text(texts) | ColumnValues::Json(texts), nulls)) => Some((texts, nulls)),
        _ => None,
    };
    let bytes: usize = runs
        .iter()
        .filter_map(|run| Some(texts_of(run)?.0.bytes_len() * run.rows.len() / run.batch.len().max(1)))
        .sum();
    let mut values: Vec<u8> = TEXT_BUFFERS.take(bytes);
    let mut offsets: Vec<i32> = Vec::with_capacity(rows + 1);
    offsets.push(0);
    let mut nulls = NullBufferBuilder::new(rows);
    for run in runs {
        let Some((texts, null_rows)) = texts_of(run) else {
            let end = offsets.last().copied().unwrap_or(0);
            offsets.extend(std::iter::repeat_n(end, run.rows.len()));
            nulls.append_n_nulls(run.rows.len());
            continue;
        };
        let (text, text_offsets) = (texts.as_str().as_bytes(), texts.offsets());
        for stretch in consecutive(&run.rows) {
            let (Some(&start), Some(&end)) = (text_offsets.get(stretch.start), text_offsets.get(stretch.end))
            else {
                return Err(RowsError::Declaration("a row past its batch's end".to_owned()));
            };
            let shift = i64::try_from(values.len()).map_err(|_| too_large())? - i64::from(start);
            values.extend_from_slice(text.get(start as usize..end as usize).unwrap_or_default());
            for &offset in text_offsets.get(stretch.start + 1..=stretch.end).unwrap_or_default() {
                offsets.push(i32::try_from(i64::from(offset) + shift).map_err(|_| too_large())?);
            }
            match null_rows {
                None => nulls.append_n_non_nulls(stretch.len()),
                Some(null_rows) => {
                    stretch.for_each(|row| nulls.append(!null_rows.get(row).copied().unwrap_or(true)))
                }
            }
        }
    }
    // SAFETY: the offsets rise from 0 to `values.len()` (each stretch's own offsets, which rise,
    // moved by one amount), and `values` is whole stretches of `Texts`, which are UTF-8 with
    // every offset on a character boundary (checked when the batch left the plugin), so every
    // value is UTF-8 too. Arrow's checked constructor would read every byte again.
    Ok(unsafe {
        StringArray::new_unchecked(
            OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)),
            TEXT_BUFFERS.lend(values),
            nulls.finish(),
        )
    })
}

/// The stretches of consecutive numbers in `rows`, as ranges.
fn consecutive(rows: &[usize]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let &first = rows.get(at)?;
        let mut end = first + 1;
        at += 1;
        while rows.get(at) == Some(&end) {
            end += 1;
            at += 1;
        }
        Some(first..end)
    })
}

/// A primitive column from the runs' values of one type (`values_of` picks them out; a column
/// of another type, or none, gives nulls).
fn primitive<T: ArrowPrimitiveType>(
    runs: &[Run<'_>],
    position: usize,
    rows: usize,
    values_of: impl Fn(&ColumnValues) -> Option<&Vec<T::Native>>,
) -> PrimitiveArray<T> {
    let mut builder = PrimitiveBuilder::<T>::with_capacity(rows);
    for run in runs {
        let data = run.column(position);
        match data.and_then(|data| Some((values_of(data.values())?, data.nulls()))) {
            Some((values, None)) => {
                for &row in &run.rows {
                    match values.get(row) {
                        Some(&value) => builder.append_value(value),
                        None => builder.append_null(),
                    }
                }
            }
            Some((values, Some(nulls))) => {
                for &row in &run.rows {
                    match values.get(row) {
                        Some(&value) if nulls.get(row) == Some(&false) => builder.append_value(value),
                        _ => builder.append_null(),
                    }
                }
            }
            None => builder.append_nulls(run.rows.len()),
        }
    }
    builder.finish()
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
    fn rows_taken_out_of_order_from_several_batches_keep_their_own_values() {
        let encoder = encoder(false);
        let first = typed_rows(
            &encoder.declared,
            &[GOOD, SPARSE, &GOOD.replace("r-1", "r-é"), &SPARSE.replace("click", "open"), GOOD],
        );
        let second = typed_rows(&encoder.declared, &[&SPARSE.replace("click", "bounce"), GOOD]);
        let picked = [&first[0], &first[2], &first[3], &second[1], &first[1], &second[0], &first[4]];
        let rows: Vec<RowRef> = picked.into_iter().cloned().collect();
        let encoded = encoder.encode(&records(&rows)).unwrap();
        assert!(encoded.rejected.is_empty(), "{:?}", encoded.rejected);
        for (position, column) in encoder.declared.columns.iter().enumerate() {
            if !matches!(column.column_type, ColumnType::Text | ColumnType::Json) {
                continue;
            }
            let array = encoded.batch.column(position).as_string::<i32>();
            for (at, row) in rows.iter().enumerate() {
                let expected = match row.value(position) {
                    Value::Text(text) | Value::Json(text) => Some(text),
                    _ => None,
                };
                let found = (!array.is_null(at)).then(|| array.value(at));
                assert_eq!(found, expected, "column `{}`, row {at}", column.name);
            }
        }
    }

    #[test]
    fn consecutive_rows_are_found_as_stretches() {
        let stretches: Vec<_> = consecutive(&[3, 4, 5, 9, 2, 3, 7]).collect();
        assert_eq!(stretches, [3..6, 9..10, 2..4, 7..8]);
        assert_eq!(consecutive(&[]).count(), 0);
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
