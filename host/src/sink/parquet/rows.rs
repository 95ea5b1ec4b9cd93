//! Rows: a batch of plugin output records (JSON objects) turned into one Arrow `RecordBatch`.
//!
//! Decoding goes through arrow-json's tape decoder, which parses each record once straight into
//! columns. Three column kinds get decoders of their own, because arrow-json alone would get the
//! contract wrong:
//! - `json` columns keep the value's JSON text (arrow-json refuses an object for a `Utf8`);
//! - `int32`/`int64` take whole numbers only (arrow-json truncates `1.5` to `1` and parses
//!   quoted digits), so a plugin bug is a dead letter instead of silently changed data;
//! - `timestamp-ms` takes whole milliseconds only, for the same reason.
//!
//! A record that does not fit must not cost the other records of its batch: the batch is
//! decoded in one go, and only when that fails is every record tried alone to find the culprits,
//! which come back as [`RowError`]s (index and reason) for the caller to dead-letter. Missing or
//! `null` required fields are found after decoding, without the slow path.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanArray, Int32Array, Int64Array, PrimitiveBuilder, RecordBatch,
    StringArray, StringBuilder,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{
    DataType, Field, FieldRef, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use arrow::error::ArrowError;
use arrow::json::ReaderBuilder;
use arrow::json::reader::{ArrayDecoder, Decoder, DecoderContext, DecoderFactory, Tape, TapeElement};

use super::schema::{LINEAGE_COLUMNS, has_lineage, is_json_column};

/// One record a plugin sent to an output, with the Kafka coordinates of the input record it
/// came from (they fill the lineage columns when the schema has them).
#[derive(Debug, Clone, Copy)]
pub struct OutputRecord<'a> {
    /// One JSON object whose fields follow the output's schema.
    pub value: &'a [u8],
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The version of the plugin that emitted the record.
    pub plugin_version: &'a str,
}

/// A record left out of the batch because it does not fit the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The record's position in the slice given to [`RowEncoder::encode`].
    pub index: usize,
    /// What is wrong with it, naming the field where the decoder can tell.
    pub reason: String,
}

/// The result of encoding one batch of records.
#[derive(Debug, Clone)]
pub struct EncodedRows {
    /// The records that fit, in their original order.
    pub batch: RecordBatch,
    /// The records that do not, by ascending index.
    pub rejected: Vec<RowError>,
}

/// Why a batch could not be encoded at all (as opposed to single records being rejected).
#[derive(Debug, thiserror::Error)]
pub enum RowsError {
    #[error("cannot build a JSON decoder for the output schema: {0}")]
    Decoder(#[source] ArrowError),
    #[error("records that decode one by one failed to decode together: {0}")]
    Inconsistent(String),
    #[error("cannot assemble the record batch: {0}")]
    Batch(#[source] ArrowError),
}

/// Encodes batches of output records into `RecordBatch`es of one schema.
///
/// Built once per output (and plugin version) and reused for every batch.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    /// The schema of the batches produced.
    schema: SchemaRef,
    /// The plugin's columns, all nullable: arrow-json would fail the whole batch on a missing
    /// required field, so required fields are checked afterwards, row by row.
    decode_schema: SchemaRef,
    /// Positions (in both schemas) and names of the required plugin columns.
    required: Vec<(usize, String)>,
    lineage: bool,
}

impl RowEncoder {
    /// An encoder for batches of `schema`: one from
    /// [`parse_output_schema`](super::schema::parse_output_schema), optionally extended by
    /// [`with_lineage`](super::schema::with_lineage). Lineage columns are filled from each
    /// record's coordinates; every other column from the record's JSON.
    ///
    /// # Errors
    ///
    /// [`RowsError::Decoder`] when the schema holds a type arrow-json cannot decode, or has no
    /// column besides lineage.
    pub fn new(schema: SchemaRef) -> Result<Self, RowsError> {
        let lineage = has_lineage(&schema);
        let plugin_columns = schema.fields().len() - if lineage { LINEAGE_COLUMNS } else { 0 };
        if plugin_columns == 0 {
            return Err(RowsError::Decoder(ArrowError::SchemaError(
                "the schema has no column to decode".to_owned(),
            )));
        }
        let decode_fields: Vec<Field> = schema.fields()[..plugin_columns]
            .iter()
            .map(|field| field.as_ref().clone().with_nullable(true))
            .collect();
        let required = schema.fields()[..plugin_columns]
            .iter()
            .enumerate()
            .filter(|(_, field)| !field.is_nullable())
            .map(|(position, field)| (position, field.name().clone()))
            .collect();
        let encoder =
            RowEncoder { schema, decode_schema: Arc::new(Schema::new(decode_fields)), required, lineage };
        // Fail at load, not on the first batch, if the decoder cannot be built.
        encoder.decoder(1).map_err(RowsError::Decoder)?;
        Ok(encoder)
    }

    /// The schema of the batches [`Self::encode`] produces.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Encodes `records`; those that do not fit the schema are left out and reported.
    ///
    /// A record is rejected when it is not exactly one JSON object, a field has the wrong type
    /// (numbers for strings, fractions or text for integers, anything but a list of strings for
    /// `list-string`, ...), or a required field is missing or `null`. Missing nullable fields
    /// are `null`; fields the schema does not name are ignored.
    ///
    /// # Errors
    ///
    /// [`RowsError`] only when the batch as a whole cannot be built, which means a bug rather
    /// than a bad record.
    pub fn encode(&self, records: &[OutputRecord<'_>]) -> Result<EncodedRows, RowsError> {
        let mut rejected = Vec::new();
        let (decoded_rows, decoded) = self.decode_fitting(records, &mut rejected)?;
        let (kept_rows, decoded) = self.drop_missing_required(decoded_rows, decoded, &mut rejected)?;
        rejected.sort_by_key(|error| error.index);

        let mut columns: Vec<ArrayRef> = decoded.columns().to_vec();
        if self.lineage {
            columns.extend(lineage_columns(records, &kept_rows));
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(RowsError::Batch)?;
        Ok(EncodedRows { batch, rejected })
    }

    /// Decodes every record that decodes, adding the others to `rejected`; returns the indices
    /// of the decoded records alongside their batch.
    fn decode_fitting(
        &self,
        records: &[OutputRecord<'_>],
        rejected: &mut Vec<RowError>,
    ) -> Result<(Vec<usize>, RecordBatch), RowsError> {
        let all: Vec<usize> = (0..records.len()).collect();
        if let Ok(batch) = self.decode_together(records, &all) {
            return Ok((all, batch));
        }
        let mut fitting = Vec::with_capacity(records.len());
        for index in all {
            match self.decode_alone(records[index].value) {
                Ok(()) => fitting.push(index),
                Err(reason) => rejected.push(RowError { index, reason }),
            }
        }
        let batch = self.decode_together(records, &fitting).map_err(RowsError::Inconsistent)?;
        Ok((fitting, batch))
    }

    /// Removes the rows of `decoded` (from the records at `rows`) that lack a required field,
    /// adding them to `rejected`; returns the indices of the rows kept alongside their batch.
    fn drop_missing_required(
        &self,
        rows: Vec<usize>,
        decoded: RecordBatch,
        rejected: &mut Vec<RowError>,
    ) -> Result<(Vec<usize>, RecordBatch), RowsError> {
        let missing = self.missing_required(&decoded);
        if missing.is_empty() {
            return Ok((rows, decoded));
        }
        let keep: BooleanArray =
            (0..decoded.num_rows()).map(|row| Some(!missing.contains_key(&row))).collect();
        let kept = rows
            .iter()
            .enumerate()
            .filter(|(row, _)| !missing.contains_key(row))
            .map(|(_, index)| *index)
            .collect();
        for (row, fields) in missing {
            rejected.push(RowError {
                index: rows[row],
                reason: format!("required field(s) missing or null: {}", fields.join(", ")),
            });
        }
        Ok((kept, filter_record_batch(&decoded, &keep).map_err(RowsError::Batch)?))
    }

    fn decoder(&self, batch_size: usize) -> Result<Decoder, ArrowError> {
        ReaderBuilder::new(self.decode_schema.clone())
            .with_batch_size(batch_size.max(1))
            .with_decoder_factory(Arc::new(ContractDecoders))
            .build_decoder()
    }

    /// Decodes the records at `indices` into one batch of the decode schema, or says why not
    /// (without saying which record: that is what [`Self::decode_alone`] is for).
    fn decode_together(
        &self,
        records: &[OutputRecord<'_>],
        indices: &[usize],
    ) -> Result<RecordBatch, String> {
        if indices.is_empty() {
            return Ok(RecordBatch::new_empty(self.decode_schema.clone()));
        }
        let mut decoder = self.decoder(indices.len()).map_err(|error| error.to_string())?;
        for &index in indices {
            feed_one_record(&mut decoder, records[index].value)?;
        }
        match decoder.flush() {
            Ok(Some(batch)) if batch.num_rows() == indices.len() => Ok(batch),
            Ok(_) => Err("the decoder returned a different number of rows".to_owned()),
            Err(error) => Err(describe(&error)),
        }
    }

    /// Whether one record decodes on its own, and why not.
    fn decode_alone(&self, value: &[u8]) -> Result<(), String> {
        let mut decoder = self.decoder(1).map_err(|error| error.to_string())?;
        feed_one_record(&mut decoder, value)?;
        decoder.flush().map(|_| ()).map_err(|error| describe(&error))
    }

    /// For each row of `decoded` with a required column null: the names of those columns.
    fn missing_required<'s>(&'s self, decoded: &RecordBatch) -> BTreeMap<usize, Vec<&'s str>> {
        let mut missing: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        for (position, name) in &self.required {
            let column = decoded.column(*position);
            if column.null_count() == 0 {
                continue;
            }
            for row in (0..column.len()).filter(|&row| column.is_null(row)) {
                missing.entry(row).or_default().push(name);
            }
        }
        missing
    }
}

/// Feeds one record to `decoder` and checks that it was exactly one complete JSON value, so a
/// truncated or doubled record cannot merge with its neighbours and shift every later row.
fn feed_one_record(decoder: &mut Decoder, value: &[u8]) -> Result<(), String> {
    let before = decoder.len();
    let mut rest = value;
    while !rest.is_empty() {
        let read = decoder.decode(rest).map_err(|error| describe(&error))?;
        if read == 0 {
            // The decoder stops once it holds as many rows as records were announced.
            return Err("the record holds more than one JSON value".to_owned());
        }
        rest = &rest[read..];
    }
    // Ends a trailing number, which would otherwise run on into the next record's bytes.
    decoder.decode(b" ").map_err(|error| describe(&error))?;
    if decoder.has_partial_record() {
        return Err("the record is incomplete JSON".to_owned());
    }
    match decoder.len() - before {
        1 => Ok(()),
        0 => Err("the record is empty".to_owned()),
        _ => Err("the record holds more than one JSON value".to_owned()),
    }
}

/// An arrow-json error without its `Json error: ` prefix, which says nothing to a reader of the
/// dead letters.
fn describe(error: &ArrowError) -> String {
    match error {
        ArrowError::JsonError(message) => message.clone(),
        other => other.to_string(),
    }
}

/// The lineage columns for the records at `rows`.
fn lineage_columns(records: &[OutputRecord<'_>], rows: &[usize]) -> [ArrayRef; LINEAGE_COLUMNS] {
    let topics: StringArray = rows.iter().map(|&row| Some(records[row].topic)).collect();
    let partitions: Int32Array = rows.iter().map(|&row| records[row].partition).collect();
    let offsets: Int64Array = rows.iter().map(|&row| records[row].offset).collect();
    let versions: StringArray = rows.iter().map(|&row| Some(records[row].plugin_version)).collect();
    [Arc::new(topics), Arc::new(partitions), Arc::new(offsets), Arc::new(versions)]
}

/// Chooses the decoders that make arrow-json follow the contract (see the module docs).
#[derive(Debug)]
struct ContractDecoders;

impl DecoderFactory for ContractDecoders {
    fn make_default_decoder(
        &self,
        _context: &DecoderContext,
        field: &FieldRef,
        _is_nullable: bool,
    ) -> Result<Option<Box<dyn ArrayDecoder>>, ArrowError> {
        if is_json_column(field) {
            return Ok(Some(Box::new(JsonTextDecoder)));
        }
        let data_type = field.data_type().clone();
        Ok(match data_type {
            DataType::Int32 => Some(Box::new(WholeNumberDecoder::<Int32Type>::new(data_type))),
            DataType::Int64 => Some(Box::new(WholeNumberDecoder::<Int64Type>::new(data_type))),
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                Some(Box::new(WholeNumberDecoder::<TimestampMillisecondType>::new(data_type)))
            }
            _ => None,
        })
    }
}

/// Decodes JSON integers (and `null`) into a primitive column, refusing anything else.
struct WholeNumberDecoder<T> {
    data_type: DataType,
    native: PhantomData<fn() -> T>,
}

impl<T> WholeNumberDecoder<T> {
    fn new(data_type: DataType) -> Self {
        WholeNumberDecoder { data_type, native: PhantomData }
    }

    fn refuse(&self, value: impl std::fmt::Display) -> ArrowError {
        ArrowError::JsonError(format!("{value} is not a whole number that fits {}", self.data_type))
    }
}

impl<T> ArrayDecoder for WholeNumberDecoder<T>
where
    T: ArrowPrimitiveType,
    T::Native: TryFrom<i64>,
{
    fn decode(&mut self, tape: &Tape<'_>, pos: &[u32]) -> Result<ArrayRef, ArrowError> {
        let mut builder =
            PrimitiveBuilder::<T>::with_capacity(pos.len()).with_data_type(self.data_type.clone());
        for &position in pos {
            let whole = match tape.get(position) {
                TapeElement::Null => {
                    builder.append_null();
                    continue;
                }
                TapeElement::Number(text) => {
                    let text = tape.get_string(text);
                    text.parse::<i64>().map_err(|_| self.refuse(text))?
                }
                // Only produced when rows are serialized into the decoder, not when parsed.
                TapeElement::I32(value) => i64::from(value),
                TapeElement::I64(high) => match tape.get(position + 1) {
                    TapeElement::I32(low) => (i64::from(high) << 32) | i64::from(low.cast_unsigned()),
                    _ => return Err(tape.error(position, "a whole number")),
                },
                _ => return Err(tape.error(position, "a whole number")),
            };
            let native = T::Native::try_from(whole).map_err(|_| self.refuse(whole))?;
            builder.append_value(native);
        }
        Ok(Arc::new(builder.finish()))
    }
}

/// Decodes any JSON value into its compact JSON text; `null` becomes a null.
///
/// The text is rebuilt from the tape (strings re-escaped), so it is the same value as the
/// record's, though escapes such as `\u00e9` may come back as the character itself.
struct JsonTextDecoder;

impl ArrayDecoder for JsonTextDecoder {
    fn decode(&mut self, tape: &Tape<'_>, pos: &[u32]) -> Result<ArrayRef, ArrowError> {
        let mut builder = StringBuilder::with_capacity(pos.len(), pos.len() * 64);
        for &position in pos {
            if tape.get(position) == TapeElement::Null {
                builder.append_null();
                continue;
            }
            write_json_text(tape, position, &mut builder)?;
            // The text went in through `fmt::Write`; this ends the value.
            builder.append_value("");
        }
        Ok(Arc::new(builder.finish()))
    }
}

/// Where a value sits while its JSON text is written: in an object (keys and values alternate)
/// or in a list, and how many items the container has had so far.
struct Container {
    is_object: bool,
    items: usize,
}

/// Writes the value starting at tape `start` as compact JSON text.
///
/// Iterative, with the nesting kept on the heap, so a deeply nested record cannot overflow the
/// stack.
fn write_json_text(tape: &Tape<'_>, start: u32, out: &mut impl std::fmt::Write) -> Result<(), ArrowError> {
    let write_failed = |_| ArrowError::ComputeError("cannot write JSON text".to_owned());
    let end = match tape.get(start) {
        TapeElement::StartObject(end) | TapeElement::StartList(end) => end,
        TapeElement::I64(_) | TapeElement::F64(_) => start + 1,
        _ => start,
    };
    let mut open: Vec<Container> = Vec::new();
    let mut position = start;
    while position <= end {
        let element = tape.get(position);
        position += 1;
        if matches!(element, TapeElement::EndObject(_) | TapeElement::EndList(_)) {
            let closing = if matches!(element, TapeElement::EndObject(_)) { '}' } else { ']' };
            out.write_char(closing).map_err(write_failed)?;
            open.pop();
            continue;
        }
        if let Some(container) = open.last_mut() {
            let is_key = container.is_object && container.items % 2 == 0;
            let after_value = if container.is_object { is_key } else { true };
            if container.items > 0 && after_value {
                out.write_char(',').map_err(write_failed)?;
            }
            container.items += 1;
            if is_key {
                let TapeElement::String(key) = element else {
                    return Err(tape.error(position - 1, "an object key"));
                };
                write_json_string(tape.get_string(key), out).map_err(write_failed)?;
                out.write_char(':').map_err(write_failed)?;
                continue;
            }
        }
        match element {
            TapeElement::StartObject(_) => {
                out.write_char('{').map_err(write_failed)?;
                open.push(Container { is_object: true, items: 0 });
            }
            TapeElement::StartList(_) => {
                out.write_char('[').map_err(write_failed)?;
                open.push(Container { is_object: false, items: 0 });
            }
            TapeElement::String(text) => {
                write_json_string(tape.get_string(text), out).map_err(write_failed)?;
            }
            TapeElement::Number(text) => out.write_str(tape.get_string(text)).map_err(write_failed)?,
            TapeElement::True => out.write_str("true").map_err(write_failed)?,
            TapeElement::False => out.write_str("false").map_err(write_failed)?,
            TapeElement::Null => out.write_str("null").map_err(write_failed)?,
            // The remaining elements only appear when rows are serialized into the decoder.
            TapeElement::I32(value) => write!(out, "{value}").map_err(write_failed)?,
            TapeElement::F32(bits) => write!(out, "{}", f32::from_bits(bits)).map_err(write_failed)?,
            TapeElement::I64(high) => {
                let TapeElement::I32(low) = tape.get(position) else {
                    return Err(tape.error(position - 1, "a number"));
                };
                position += 1;
                let value = (i64::from(high) << 32) | i64::from(low.cast_unsigned());
                write!(out, "{value}").map_err(write_failed)?;
            }
            TapeElement::F64(high) => {
                let TapeElement::F32(low) = tape.get(position) else {
                    return Err(tape.error(position - 1, "a number"));
                };
                position += 1;
                let value = f64::from_bits((u64::from(high) << 32) | u64::from(low));
                write!(out, "{value}").map_err(write_failed)?;
            }
            _ => return Err(tape.error(position - 1, "a JSON value")),
        }
    }
    Ok(())
}

/// Writes `text` as a JSON string literal.
fn write_json_string(text: &str, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    out.write_char('"')?;
    let mut plain_from = 0;
    for (at, character) in text.char_indices() {
        let escaped = match character {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{08}' => "\\b",
            '\u{0c}' => "\\f",
            control if u32::from(control) < 0x20 => "",
            _ => continue,
        };
        out.write_str(&text[plain_from..at])?;
        if escaped.is_empty() {
            write!(out, "\\u{:04x}", u32::from(character))?;
        } else {
            out.write_str(escaped)?;
        }
        plain_from = at + character.len_utf8();
    }
    out.write_str(&text[plain_from..])?;
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, ListArray};
    use arrow::datatypes::TimestampMillisecondType;

    use super::super::schema::{parse_output_schema, with_lineage};
    use super::*;

    use super::super::test_schema::EVERY_TYPE as SCHEMA;

    fn encoder(lineage: bool) -> RowEncoder {
        let schema = parse_output_schema(SCHEMA).unwrap();
        let schema = if lineage { with_lineage(&schema).unwrap() } else { schema };
        RowEncoder::new(Arc::new(schema)).unwrap()
    }

    fn records<'a>(values: &[&'a str]) -> Vec<OutputRecord<'a>> {
        values
            .iter()
            .enumerate()
            .map(|(index, value)| OutputRecord {
                value: value.as_bytes(),
                topic: "events-raw",
                partition: 3,
                offset: 100 + index as i64,
                plugin_version: "1.0.0",
            })
            .collect()
    }

    const GOOD: &str = r#"{"dt":"2024-05-01","event":"open","tls":1,"asm_group_id":42,"score":0.5,"machine_open":true,"event_time":1714521600000,"categories":["a","b"],"custom_args":{"mail_id":"m-1","n":[1,2.5,null]}}"#;
    const SPARSE: &str = r#"{"dt":"2024-05-02","event":"click","event_time":1714608000000,"categories":[],"custom_args":null}"#;

    #[test]
    fn every_column_type_decodes_and_missing_nullable_fields_are_null() {
        let encoded = encoder(false).encode(&records(&[GOOD, SPARSE])).unwrap();
        assert!(encoded.rejected.is_empty(), "{:?}", encoded.rejected);
        let batch = &encoded.batch;
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(0).as_string::<i32>().value(1), "2024-05-02");
        assert_eq!(batch.column(2).as_primitive::<Int32Type>().value(0), 1);
        assert!(batch.column(2).is_null(1));
        assert_eq!(batch.column(3).as_primitive::<Int64Type>().value(0), 42);
        assert_eq!(batch.column(4).as_primitive::<arrow::datatypes::Float64Type>().value(0), 0.5);
        assert!(batch.column(5).as_boolean().value(0));
        assert!(batch.column(5).is_null(1));
        assert_eq!(batch.column(6).as_primitive::<TimestampMillisecondType>().value(1), 1_714_608_000_000);
        let categories: &ListArray = batch.column(7).as_list();
        assert_eq!(categories.value(0).as_string::<i32>().iter().collect::<Vec<_>>(), [Some("a"), Some("b")]);
        assert_eq!(categories.value(1).len(), 0);
        let custom_args = batch.column(8).as_string::<i32>();
        assert_eq!(custom_args.value(0), r#"{"mail_id":"m-1","n":[1,2.5,null]}"#);
        assert!(custom_args.is_null(1));
    }

    #[test]
    fn json_columns_keep_any_value_as_text() {
        let schema = r#"{"fields":[{"name":"doc","type":"json","nullable":true}]}"#;
        let encoder = RowEncoder::new(Arc::new(parse_output_schema(schema).unwrap())).unwrap();
        let values = [
            r#"{"doc":"plain \"quoted\" \\ \n \u0001 é"}"#,
            r#"{"doc":-1.5e3}"#,
            r#"{"doc":[]}"#,
            r#"{"doc":{}}"#,
            r#"{"doc":[{"a":{"b":[true,false,null]}},"x"]}"#,
            r#"{"doc" : { "spaced" : [ 1 , 2 ] } }"#,
        ];
        let encoded = encoder.encode(&records(&values)).unwrap();
        assert!(encoded.rejected.is_empty(), "{:?}", encoded.rejected);
        let texts: Vec<&str> = encoded.batch.column(0).as_string::<i32>().iter().flatten().collect();
        assert_eq!(
            texts,
            [
                r#""plain \"quoted\" \\ \n \u0001 é""#,
                "-1.5e3",
                "[]",
                "{}",
                r#"[{"a":{"b":[true,false,null]}},"x"]"#,
                r#"{"spaced":[1,2]}"#,
            ]
        );
        for (text, value) in texts.iter().zip(values) {
            let original: serde_json::Value = serde_json::from_str(value).unwrap();
            let reparsed: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(reparsed, original["doc"]);
        }
    }

    #[test]
    fn bad_records_are_rejected_with_a_reason_and_the_rest_encoded() {
        let values = [
            GOOD,
            r#"{"dt":"2024-05-01","event":"open","tls":"1","event_time":1,"categories":[]}"#,
            SPARSE,
            r#"{"dt":"2024-05-01","event":"open","tls":1.5,"event_time":1,"categories":[]}"#,
            r#"{"dt":"2024-05-01","event":"open","tls":3000000000,"event_time":1,"categories":[]}"#,
            r#"{"dt":7,"event":"open","event_time":1,"categories":[]}"#,
            r#"{"dt":"d","event":"open","event_time":1,"categories":"a"}"#,
            r#"{"dt":"d","event":"open","machine_open":"yes","event_time":1,"categories":[]}"#,
            r#"{"dt":"d","event":"open","event_time":"2024-05-01","categories":[]}"#,
            r#"{"event":"open","event_time":1,"categories":[]}"#,
            r#"{"dt":null,"event":null,"event_time":1,"categories":[]}"#,
            r#"{"dt":"d","event":"open","event_time":1,"categories":[]"#,
            r#"{"dt":"d","event":"open","event_time":1,"categories":[]}{"dt":"e"}"#,
            "",
            "[1,2]",
            "42",
            GOOD,
        ];
        let encoded = encoder(true).encode(&records(&values)).unwrap();
        let rejected: Vec<usize> = encoded.rejected.iter().map(|error| error.index).collect();
        assert_eq!(rejected, [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        let batch = &encoded.batch;
        assert_eq!(batch.num_rows(), 3);
        let offsets = batch.column_by_name("kafka_offset").unwrap().as_primitive::<Int64Type>();
        assert_eq!(offsets.values(), &[100, 102, 116]);

        let reason = |index: usize| {
            encoded.rejected.iter().find(|error| error.index == index).unwrap().reason.as_str()
        };
        assert!(reason(1).contains("'tls'"), "{}", reason(1));
        assert!(reason(3).contains("1.5 is not a whole number"), "{}", reason(3));
        assert!(reason(4).contains("3000000000"), "{}", reason(4));
        assert!(reason(6).contains("'categories'"), "{}", reason(6));
        assert_eq!(reason(9), "required field(s) missing or null: dt");
        assert_eq!(reason(10), "required field(s) missing or null: dt, event");
        assert_eq!(reason(11), "the record is incomplete JSON");
        assert_eq!(reason(12), "the record holds more than one JSON value");
        assert_eq!(reason(13), "the record is empty");
    }

    #[test]
    fn invalid_utf8_is_rejected_without_losing_the_batch() {
        let broken = b"{\"dt\":\"\xff\xfe\",\"event\":\"open\",\"event_time\":1,\"categories\":[]}";
        let mut input = records(&[GOOD, GOOD]);
        input[1].value = broken;
        let encoded = encoder(false).encode(&input).unwrap();
        assert_eq!(encoded.batch.num_rows(), 1);
        assert_eq!(encoded.rejected.len(), 1);
        assert_eq!(encoded.rejected[0].index, 1);
    }

    #[test]
    fn a_batch_with_only_missing_required_fields_skips_the_slow_path() {
        let values = [GOOD, r#"{"event":"open","event_time":1,"categories":[]}"#];
        let encoded = encoder(false).encode(&records(&values)).unwrap();
        assert_eq!(encoded.rejected.len(), 1);
        assert_eq!(encoded.rejected[0].index, 1);
        assert_eq!(encoded.batch.num_rows(), 1);
    }

    #[test]
    fn lineage_columns_carry_each_records_coordinates() {
        let mut input = records(&[GOOD, SPARSE]);
        input[1].topic = "other";
        input[1].partition = 7;
        input[1].plugin_version = "2.0.0";
        let encoded = encoder(true).encode(&input).unwrap();
        let batch = &encoded.batch;
        let topics = batch.column_by_name("kafka_topic").unwrap().as_string::<i32>();
        assert_eq!(topics.iter().collect::<Vec<_>>(), [Some("events-raw"), Some("other")]);
        let partitions = batch.column_by_name("kafka_partition").unwrap();
        assert_eq!(partitions.as_primitive::<Int32Type>().values(), &[3, 7]);
        let versions = batch.column_by_name("plugin_version").unwrap().as_string::<i32>();
        assert_eq!(versions.iter().collect::<Vec<_>>(), [Some("1.0.0"), Some("2.0.0")]);
    }

    #[test]
    fn no_records_make_an_empty_batch_and_all_bad_records_too() {
        let encoder = encoder(true);
        let empty = encoder.encode(&[]).unwrap();
        assert_eq!(empty.batch.num_rows(), 0);
        assert_eq!(empty.batch.schema(), *encoder.schema());
        let all_bad = encoder.encode(&records(&["{", "null"])).unwrap();
        assert_eq!(all_bad.batch.num_rows(), 0);
        assert_eq!(all_bad.rejected.len(), 2);
    }

    #[test]
    fn deep_nesting_in_a_json_column_does_not_overflow_the_stack() {
        let schema = r#"{"fields":[{"name":"doc","type":"json","nullable":true}]}"#;
        let encoder = RowEncoder::new(Arc::new(parse_output_schema(schema).unwrap())).unwrap();
        let depth = 200_000;
        let value = format!(r#"{{"doc":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
        let encoded = encoder.encode(&records(&[&value])).unwrap();
        assert_eq!(encoded.batch.column(0).as_string::<i32>().value(0).len(), 2 * depth);
    }
}
