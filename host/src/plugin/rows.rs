//! Typed rows: what a plugin sent to one output in one batch, column by column.
//!
//! A [`RowBatch`] holds the columns as the contract carries them (texts back to back with
//! offsets, numbers as vectors), checked once when the batch leaves the plugin. Sinks read
//! [`Value`]s from it straight into Arrow builders or PostgreSQL cells, so no text is parsed on
//! the way. Rows that must travel as JSON (to a chained step, Kafka, an HTTP reply, SendGrid)
//! are rendered with [`RowBatch::write_json`], which only writes.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use super::schema::{ColumnType, OutputSchema};

/// Texts back to back: text `i` is `text[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Texts {
    text: String,
    offsets: Vec<u32>,
}

impl Texts {
    /// Checks the contract's `blobs` as UTF-8 texts: `offsets` start at 0, never decrease, end
    /// at the end of `bytes` and fall between characters.
    ///
    /// # Errors
    /// A short reason naming what is wrong.
    pub fn from_blobs(bytes: Vec<u8>, offsets: Vec<u32>) -> Result<Self, String> {
        if simdutf8::basic::from_utf8(&bytes).is_err() {
            // std's check says where.
            let error = std::str::from_utf8(&bytes).err().map_or_else(String::new, |error| error.to_string());
            return Err(format!("texts are not UTF-8: {error}"));
        }
        // SAFETY: simdutf8 has just checked that `bytes` is UTF-8 (std would check it again).
        let text = unsafe { String::from_utf8_unchecked(bytes) };
        check_offsets(&offsets, text.len())?;
        if let Some(bad) = offsets.iter().find(|&&offset| !text.is_char_boundary(offset as usize)) {
            return Err(format!("offset {bad} splits a UTF-8 character"));
        }
        Ok(Texts { text, offsets })
    }

    /// No texts yet, ready for [`Texts::push`].
    pub fn new() -> Self {
        Texts { text: String::new(), offsets: vec![0] }
    }

    /// How many texts there are.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Text `index`; empty when out of range.
    pub fn get(&self, index: usize) -> &str {
        match (self.offsets.get(index), self.offsets.get(index + 1)) {
            (Some(&start), Some(&end)) => self.text.get(start as usize..end as usize).unwrap_or_default(),
            _ => "",
        }
    }

    /// Appends one text.
    ///
    /// # Errors
    /// When the texts would pass 4 GiB, which the contract's `u32` offsets cannot address.
    pub fn push(&mut self, text: &str) -> Result<(), String> {
        self.text.push_str(text);
        let end = u32::try_from(self.text.len()).map_err(|_| "texts past 4 GiB".to_owned())?;
        self.offsets.push(end);
        Ok(())
    }

    /// Drops texts after the first `len`.
    fn truncate(&mut self, len: usize) {
        self.offsets.truncate(len + 1);
        let end = self.offsets.last().map_or(0, |&end| end as usize);
        self.text.truncate(end);
    }

    /// The bytes of all texts together (for sizing buffers).
    pub fn bytes_len(&self) -> usize {
        self.text.len()
    }

    /// Every text back to back.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Where each text starts in [`Texts::as_str`], and where the last one ends: one entry more
    /// than there are texts, each on a character boundary.
    pub fn offsets(&self) -> &[u32] {
        &self.offsets
    }
}

/// Checks offsets into a buffer of `len` bytes (or items): at least one, from 0, rising, ending at `len`.
fn check_offsets(offsets: &[u32], len: usize) -> Result<(), String> {
    match (offsets.first(), offsets.last()) {
        (Some(0), Some(&last)) if last as usize == len => {}
        (None, _) => return Err("offsets are empty; they need one entry more than there are values".into()),
        _ => return Err(format!("offsets must start at 0 and end at {len}")),
    }
    if offsets.windows(2).any(|pair| pair[0] > pair[1]) {
        return Err("offsets decrease".into());
    }
    Ok(())
}

/// The values of one column, one per row.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    Text(Texts),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    Boolean(Vec<bool>),
    TimestampMs(Vec<i64>),
    /// List `i` is `items[offsets[i]..offsets[i + 1]]`.
    TextList {
        items: Texts,
        offsets: Vec<u32>,
    },
    Json(Texts),
}

impl ColumnValues {
    /// An empty column of type `column_type`.
    pub fn empty(column_type: ColumnType) -> Self {
        match column_type {
            ColumnType::Text => ColumnValues::Text(Texts::new()),
            ColumnType::Int32 => ColumnValues::Int32(Vec::new()),
            ColumnType::Int64 => ColumnValues::Int64(Vec::new()),
            ColumnType::Float64 => ColumnValues::Float64(Vec::new()),
            ColumnType::Boolean => ColumnValues::Boolean(Vec::new()),
            ColumnType::TimestampMs => ColumnValues::TimestampMs(Vec::new()),
            ColumnType::TextList => ColumnValues::TextList { items: Texts::new(), offsets: vec![0] },
            ColumnType::Json => ColumnValues::Json(Texts::new()),
        }
    }

    /// The type these values are of.
    pub fn column_type(&self) -> ColumnType {
        match self {
            ColumnValues::Text(_) => ColumnType::Text,
            ColumnValues::Int32(_) => ColumnType::Int32,
            ColumnValues::Int64(_) => ColumnType::Int64,
            ColumnValues::Float64(_) => ColumnType::Float64,
            ColumnValues::Boolean(_) => ColumnType::Boolean,
            ColumnValues::TimestampMs(_) => ColumnType::TimestampMs,
            ColumnValues::TextList { .. } => ColumnType::TextList,
            ColumnValues::Json(_) => ColumnType::Json,
        }
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        match self {
            ColumnValues::Text(texts) | ColumnValues::Json(texts) => texts.len(),
            ColumnValues::Int32(values) => values.len(),
            ColumnValues::Int64(values) | ColumnValues::TimestampMs(values) => values.len(),
            ColumnValues::Float64(values) => values.len(),
            ColumnValues::Boolean(values) => values.len(),
            ColumnValues::TextList { offsets, .. } => offsets.len().saturating_sub(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the offsets of a text list against its items.
    ///
    /// # Errors
    /// A short reason when they do not fit.
    pub fn text_list(items: Texts, offsets: Vec<u32>) -> Result<Self, String> {
        check_offsets(&offsets, items.len())?;
        Ok(ColumnValues::TextList { items, offsets })
    }

    fn truncate(&mut self, len: usize) {
        match self {
            ColumnValues::Text(texts) | ColumnValues::Json(texts) => texts.truncate(len),
            ColumnValues::Int32(values) => values.truncate(len),
            ColumnValues::Int64(values) | ColumnValues::TimestampMs(values) => values.truncate(len),
            ColumnValues::Float64(values) => values.truncate(len),
            ColumnValues::Boolean(values) => values.truncate(len),
            ColumnValues::TextList { items, offsets } => {
                offsets.truncate(len + 1);
                items.truncate(offsets.last().map_or(0, |&end| end as usize));
            }
        }
    }

    /// Appends a placeholder for a null row.
    fn push_placeholder(&mut self) -> Result<(), String> {
        match self {
            ColumnValues::Text(texts) | ColumnValues::Json(texts) => texts.push("")?,
            ColumnValues::Int32(values) => values.push(0),
            ColumnValues::Int64(values) | ColumnValues::TimestampMs(values) => values.push(0),
            ColumnValues::Float64(values) => values.push(0.0),
            ColumnValues::Boolean(values) => values.push(false),
            ColumnValues::TextList { items, offsets } => {
                offsets.push(u32::try_from(items.len()).map_err(|_| "too many list items")?)
            }
        }
        Ok(())
    }
}

/// One column of a batch: its values and which rows are null.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnData {
    values: ColumnValues,
    /// One flag per row when any row is null; `None` when none is.
    nulls: Option<Vec<bool>>,
}

impl ColumnData {
    /// A column whose null rows are listed in `null_rows` (ascending, as the contract carries them).
    ///
    /// # Errors
    /// When a listed row is past the column's end.
    pub fn new(values: ColumnValues, null_rows: &[u32]) -> Result<Self, String> {
        if null_rows.is_empty() {
            return Ok(ColumnData { values, nulls: None });
        }
        let mut nulls = vec![false; values.len()];
        for &row in null_rows {
            let flag = nulls
                .get_mut(row as usize)
                .ok_or_else(|| format!("null row {row} is past the column's end"))?;
            *flag = true;
        }
        Ok(ColumnData { values, nulls: Some(nulls) })
    }

    pub fn values(&self) -> &ColumnValues {
        &self.values
    }

    /// Whether row `row` is null.
    pub fn is_null(&self, row: usize) -> bool {
        self.nulls.as_ref().is_some_and(|nulls| nulls.get(row).copied().unwrap_or(false))
    }

    /// One flag per row, `true` where the row is null; `None` when no row is.
    pub fn nulls(&self) -> Option<&[bool]> {
        self.nulls.as_deref()
    }

    /// Whether any row is null.
    pub fn has_nulls(&self) -> bool {
        self.nulls.as_ref().is_some_and(|nulls| nulls.contains(&true))
    }

    /// The value of row `row`.
    pub fn value(&self, row: usize) -> Value<'_> {
        if self.is_null(row) {
            return Value::Null;
        }
        match &self.values {
            ColumnValues::Text(texts) => Value::Text(texts.get(row)),
            ColumnValues::Json(texts) => Value::Json(texts.get(row)),
            ColumnValues::Int32(values) => values.get(row).map_or(Value::Null, |&v| Value::Int32(v)),
            ColumnValues::Int64(values) => values.get(row).map_or(Value::Null, |&v| Value::Int64(v)),
            ColumnValues::TimestampMs(values) => {
                values.get(row).map_or(Value::Null, |&v| Value::TimestampMs(v))
            }
            ColumnValues::Float64(values) => values.get(row).map_or(Value::Null, |&v| Value::Float64(v)),
            ColumnValues::Boolean(values) => values.get(row).map_or(Value::Null, |&v| Value::Boolean(v)),
            ColumnValues::TextList { items, offsets } => match (offsets.get(row), offsets.get(row + 1)) {
                (Some(&start), Some(&end)) => {
                    Value::TextList(TextList { items, start: start as usize, end: end as usize })
                }
                _ => Value::Null,
            },
        }
    }

    fn truncate(&mut self, len: usize) {
        self.values.truncate(len);
        if let Some(nulls) = self.nulls.as_mut() {
            nulls.truncate(len);
        }
    }

    fn push_null(&mut self) -> Result<(), String> {
        let rows = self.values.len();
        self.values.push_placeholder()?;
        self.nulls.get_or_insert_with(|| vec![false; rows]).push(true);
        Ok(())
    }

    fn mark_present(&mut self) {
        if let Some(nulls) = self.nulls.as_mut() {
            nulls.push(false);
        }
    }
}

/// A list of texts in one row: items `start..end` of a column's texts.
#[derive(Debug, Clone, Copy)]
pub struct TextList<'a> {
    items: &'a Texts,
    start: usize,
    end: usize,
}

impl<'a> TextList<'a> {
    /// Every text of `items` as one list.
    pub fn all(items: &'a Texts) -> Self {
        TextList { items, start: 0, end: items.len() }
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let items = self.items;
        (self.start..self.end).map(move |index| items.get(index))
    }
}

impl PartialEq for TextList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// One value of one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Text(&'a str),
    Int32(i32),
    Int64(i64),
    Float64(f64),
    Boolean(bool),
    TimestampMs(i64),
    TextList(TextList<'a>),
    /// JSON text, as the plugin wrote it.
    Json(&'a str),
}

impl Value<'_> {
    /// The contract's name for this value's type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Text(_) => "text",
            Value::Int32(_) => "int32",
            Value::Int64(_) => "int64",
            Value::Float64(_) => "float64",
            Value::Boolean(_) => "boolean",
            Value::TimestampMs(_) => "timestamp-ms",
            Value::TextList(_) => "text-list",
            Value::Json(_) => "json",
        }
    }
}

/// What a plugin sent to one output in one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RowBatch {
    schema: Arc<OutputSchema>,
    inputs: Vec<u32>,
    keys: Option<Texts>,
    columns: Vec<ColumnData>,
    /// [`RowBatch::bytes_per_row`], worked out once the batch is complete.
    bytes_per_row: OnceLock<usize>,
}

/// Why a batch of rows breaks the contract (a fault of the plugin, not of a record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("output `{output}`: {problem}")]
pub struct RowsContractError {
    pub output: String,
    pub problem: String,
}

impl RowBatch {
    /// Checks columns against the output's declared schema: one per declared column, of its
    /// type, each with one value per row.
    ///
    /// # Errors
    /// [`RowsContractError`] naming the column at fault.
    pub fn new(
        schema: Arc<OutputSchema>,
        inputs: Vec<u32>,
        keys: Option<Texts>,
        columns: Vec<ColumnData>,
    ) -> Result<Self, RowsContractError> {
        let fail = |problem: String| RowsContractError { output: schema.name.clone(), problem };
        if columns.len() != schema.columns.len() {
            return Err(fail(format!("{} columns sent, {} declared", columns.len(), schema.columns.len())));
        }
        let rows = inputs.len();
        for (column, declared) in columns.iter().zip(&schema.columns) {
            let found = column.values.column_type();
            if found != declared.column_type {
                return Err(fail(format!(
                    "column `{}` is declared {} but holds {found} values",
                    declared.name, declared.column_type
                )));
            }
            if column.values.len() != rows {
                return Err(fail(format!(
                    "column `{}` has {} values for {rows} rows",
                    declared.name,
                    column.values.len()
                )));
            }
        }
        if let Some(keys) = &keys
            && keys.len() != rows
        {
            return Err(fail(format!("{} keys for {rows} rows", keys.len())));
        }
        Ok(RowBatch { schema, inputs, keys, columns, bytes_per_row: OnceLock::new() })
    }

    /// An empty batch, filled with [`RowBatch::push_row`].
    pub fn empty(schema: Arc<OutputSchema>) -> Self {
        let columns = schema
            .columns
            .iter()
            .map(|column| ColumnData { values: ColumnValues::empty(column.column_type), nulls: None })
            .collect();
        RowBatch { schema, inputs: Vec::new(), keys: None, columns, bytes_per_row: OnceLock::new() }
    }

    /// Appends one row; `values` in column order. Nothing is appended when it fails.
    ///
    /// # Errors
    /// `(column, reason)` when a value is not of its column's type, or when some rows have keys
    /// and this one has none (or the other way round).
    pub fn push_row(
        &mut self,
        input: u32,
        key: Option<&[u8]>,
        values: &[Value<'_>],
    ) -> Result<(), (String, String)> {
        let rows = self.inputs.len();
        let outcome = self.try_push_row(key, values);
        if outcome.is_err() {
            self.columns.iter_mut().for_each(|column| column.truncate(rows));
            if let Some(keys) = self.keys.as_mut() {
                keys.truncate(rows);
            }
            return outcome;
        }
        self.inputs.push(input);
        self.bytes_per_row = OnceLock::new();
        Ok(())
    }

    fn try_push_row(&mut self, key: Option<&[u8]>, values: &[Value<'_>]) -> Result<(), (String, String)> {
        let rows = self.inputs.len();
        match (key, &mut self.keys) {
            (Some(key), Some(keys)) => push_key(keys, key)?,
            (Some(key), None) if rows == 0 => {
                let mut keys = Texts::new();
                push_key(&mut keys, key)?;
                self.keys = Some(keys);
            }
            (None, None) => {}
            _ => return Err(("key".into(), "either every row of an output has a key or none has".into())),
        }
        if values.len() != self.columns.len() {
            return Err((
                "row".into(),
                format!("{} values for {} columns", values.len(), self.columns.len()),
            ));
        }
        for ((column, declared), value) in self.columns.iter_mut().zip(&self.schema.columns).zip(values) {
            let misfit = |found: &str| {
                (declared.name.clone(), format!("expected {}, found {found}", declared.column_type))
            };
            let pushed: Result<(), String> = match (&mut column.values, value) {
                (_, Value::Null) => column.push_null(),
                (ColumnValues::Text(texts), Value::Text(text))
                | (ColumnValues::Json(texts), Value::Json(text)) => texts.push(text),
                (ColumnValues::Int32(values), Value::Int32(v)) => {
                    values.push(*v);
                    Ok(())
                }
                (ColumnValues::Int64(values), Value::Int64(v))
                | (ColumnValues::TimestampMs(values), Value::TimestampMs(v)) => {
                    values.push(*v);
                    Ok(())
                }
                (ColumnValues::Float64(values), Value::Float64(v)) => {
                    values.push(*v);
                    Ok(())
                }
                (ColumnValues::Boolean(values), Value::Boolean(v)) => {
                    values.push(*v);
                    Ok(())
                }
                (ColumnValues::TextList { items, offsets }, Value::TextList(list)) => (|| {
                    for item in list.iter() {
                        items.push(item)?;
                    }
                    offsets.push(u32::try_from(items.len()).map_err(|_| "too many list items".to_owned())?);
                    Ok(())
                })(),
                (_, other) => return Err(misfit(other.kind())),
            };
            pushed.map_err(|reason| (declared.name.clone(), reason))?;
            if !matches!(value, Value::Null) {
                column.mark_present();
            }
        }
        Ok(())
    }

    pub fn schema(&self) -> &Arc<OutputSchema> {
        &self.schema
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// The index (in the plugin's input batch) of the record row `row` came from.
    pub fn input(&self, row: usize) -> Option<u32> {
        self.inputs.get(row).copied()
    }

    pub fn inputs(&self) -> &[u32] {
        &self.inputs
    }

    /// Row `row`'s key, if the rows have keys; an empty key is none (the contract carries a
    /// key for every row or for none, so a keyless row among keyed ones has an empty key).
    pub fn key(&self, row: usize) -> Option<&[u8]> {
        self.keys.as_ref().map(|keys| keys.get(row).as_bytes()).filter(|key| !key.is_empty())
    }

    pub fn columns(&self) -> &[ColumnData] {
        &self.columns
    }

    /// Row `row`'s value in column `column`.
    pub fn value(&self, row: usize, column: usize) -> Value<'_> {
        self.columns.get(column).map_or(Value::Null, |data| data.value(row))
    }

    /// About the bytes one row's values take (the batch's buffers over its rows), for the
    /// memory limits of windows that hold rows.
    pub fn bytes_per_row(&self) -> usize {
        *self.bytes_per_row.get_or_init(|| self.measure_bytes_per_row())
    }

    fn measure_bytes_per_row(&self) -> usize {
        let rows = self.len().max(1);
        let bytes: usize = self
            .columns
            .iter()
            .map(|column| match &column.values {
                ColumnValues::Text(texts) | ColumnValues::Json(texts) => texts.bytes_len() + 4 * texts.len(),
                ColumnValues::TextList { items, offsets } => {
                    items.bytes_len() + 4 * (items.len() + offsets.len())
                }
                other => 8 * other.len(),
            })
            .sum();
        bytes / rows
    }

    /// The rows holding a null in a column that is not nullable, with that column's name.
    pub fn required_nulls(&self) -> Vec<(usize, &str)> {
        let mut found = Vec::new();
        for (column, declared) in self.columns.iter().zip(&self.schema.columns) {
            if declared.nullable || !column.has_nulls() {
                continue;
            }
            found.extend(
                (0..self.len()).filter(|&row| column.is_null(row)).map(|row| (row, declared.name.as_str())),
            );
        }
        found
    }

    /// Writes row `row` as a compact JSON object: columns in declared order, a null left out
    /// (as SendGrid's and most APIs' optional members are), `json` values as the plugin wrote
    /// them, a non-finite float left out (JSON has no such numbers).
    pub fn write_json(&self, row: usize, out: &mut String) {
        out.push('{');
        let mut first = true;
        for (column, declared) in self.columns.iter().zip(&self.schema.columns) {
            let value = column.value(row);
            if matches!(value, Value::Null) || matches!(value, Value::Float64(f) if !f.is_finite()) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            write_json_string(&declared.name, out);
            out.push(':');
            write_json_value(value, out);
        }
        out.push('}');
    }

    /// Row `row` as JSON bytes (see [`RowBatch::write_json`]).
    pub fn json(&self, row: usize) -> Vec<u8> {
        let mut out = String::with_capacity(64);
        self.write_json(row, &mut out);
        out.into_bytes()
    }
}

fn push_key(keys: &mut Texts, key: &[u8]) -> Result<(), (String, String)> {
    // Keys are bytes; the store keeps them with the texts, so non-UTF-8 keys are refused.
    let key = std::str::from_utf8(key).map_err(|_| ("key".to_owned(), "a key must be UTF-8".to_owned()))?;
    keys.push(key).map_err(|reason| ("key".to_owned(), reason))
}

/// Writes one value as JSON (`Null` as `null`).
pub fn write_json_value(value: Value<'_>, out: &mut String) {
    match value {
        Value::Null | Value::Json("") => out.push_str("null"),
        Value::Text(text) => write_json_string(text, out),
        // Writing into a String cannot fail.
        Value::Int32(v) => drop(write!(out, "{v}")),
        Value::Int64(v) | Value::TimestampMs(v) => drop(write!(out, "{v}")),
        Value::Float64(v) if v.is_finite() => drop(write!(out, "{v}")),
        Value::Float64(_) => out.push_str("null"),
        Value::Boolean(v) => out.push_str(if v { "true" } else { "false" }),
        Value::Json(text) => out.push_str(text),
        Value::TextList(list) => {
            out.push('[');
            for (index, item) in list.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_json_string(item, out);
            }
            out.push(']');
        }
    }
}

/// Writes `text` as a JSON string, escaping what JSON requires.
pub fn write_json_string(text: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..index]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        start = index + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// One row of a [`RowBatch`], shared: cheap to clone and to keep in a window.
#[derive(Debug, Clone)]
pub struct RowRef {
    batch: Arc<RowBatch>,
    row: u32,
}

impl RowRef {
    /// Row `row` of `batch`; `None` past its end.
    pub fn new(batch: Arc<RowBatch>, row: usize) -> Option<Self> {
        let row = u32::try_from(row).ok().filter(|&row| (row as usize) < batch.len())?;
        Some(RowRef { batch, row })
    }

    pub fn batch(&self) -> &Arc<RowBatch> {
        &self.batch
    }

    pub fn row(&self) -> usize {
        self.row as usize
    }

    pub fn key(&self) -> Option<&[u8]> {
        self.batch.key(self.row())
    }

    /// The value in column `column` (by position in the output's schema).
    pub fn value(&self, column: usize) -> Value<'_> {
        self.batch.value(self.row(), column)
    }

    /// The value in the column named `name`; `Null` when there is none.
    pub fn value_named(&self, name: &str) -> Value<'_> {
        self.batch.schema.position(name).map_or(Value::Null, |column| self.value(column))
    }

    /// The row as a JSON object (see [`RowBatch::write_json`]).
    pub fn json(&self) -> Vec<u8> {
        self.batch.json(self.row())
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::ColumnSpec;
    use super::*;

    pub(crate) fn every_type() -> Arc<OutputSchema> {
        let column = |name: &str, column_type| ColumnSpec { name: name.into(), column_type, nullable: true };
        Arc::new(
            OutputSchema::new(
                "rows".into(),
                vec![
                    ColumnSpec { name: "id".into(), column_type: ColumnType::Text, nullable: false },
                    column("i32", ColumnType::Int32),
                    column("i64", ColumnType::Int64),
                    column("f64", ColumnType::Float64),
                    column("flag", ColumnType::Boolean),
                    column("at", ColumnType::TimestampMs),
                    column("tags", ColumnType::TextList),
                    column("doc", ColumnType::Json),
                ],
            )
            .expect("schema"),
        )
    }

    #[test]
    fn rows_of_every_type_with_nulls_read_back_and_render() {
        let mut batch = RowBatch::empty(every_type());
        let tags = Texts::from_blobs(b"ab\"c".to_vec(), vec![0, 2, 4]).expect("texts");
        let list = TextList { items: &tags, start: 0, end: 2 };
        batch
            .push_row(
                0,
                None,
                &[
                    Value::Text("é\n"),
                    Value::Int32(-1),
                    Value::Int64(1 << 40),
                    Value::Float64(1.5),
                    Value::Boolean(true),
                    Value::TimestampMs(1_700_000_000_123),
                    Value::TextList(list),
                    Value::Json(r#"{"a":[1]}"#),
                ],
            )
            .expect("row");
        batch
            .push_row(
                3,
                None,
                &[
                    Value::Text("x"),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ],
            )
            .expect("nulls");
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.inputs(), [0, 3]);
        assert_eq!(batch.value(0, 2), Value::Int64(1 << 40));
        assert_eq!(batch.value(1, 2), Value::Null);
        assert_eq!(
            String::from_utf8(batch.json(0)).unwrap(),
            r#"{"id":"é\n","i32":-1,"i64":1099511627776,"f64":1.5,"flag":true,"at":1700000000123,"tags":["ab","\"c"],"doc":{"a":[1]}}"#
        );
        assert_eq!(String::from_utf8(batch.json(1)).unwrap(), r#"{"id":"x"}"#);
        assert!(batch.required_nulls().is_empty());
    }

    #[test]
    fn a_misfit_value_names_its_column_and_leaves_the_batch_as_it_was() {
        let mut batch = RowBatch::empty(every_type());
        let before = batch.clone();
        let error = batch
            .push_row(
                0,
                None,
                &[
                    Value::Text("a"),
                    Value::Int32(1),
                    Value::Text("not a number"),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ],
            )
            .unwrap_err();
        assert_eq!(error, ("i64".to_owned(), "expected int64, found text".to_owned()));
        assert_eq!(batch, before);
    }

    #[test]
    fn a_null_in_a_required_column_is_reported_with_the_column() {
        let mut batch = RowBatch::empty(every_type());
        let nulls = [Value::Null; 8];
        batch.push_row(0, None, &nulls).expect("pushed");
        assert_eq!(batch.required_nulls(), [(0, "id")]);
    }

    #[test]
    fn contract_columns_are_checked_against_the_declaration() {
        let schema = Arc::new(
            OutputSchema::new(
                "o".into(),
                vec![ColumnSpec { name: "n".into(), column_type: ColumnType::Int64, nullable: true }],
            )
            .expect("schema"),
        );
        let text = ColumnData::new(ColumnValues::Text(Texts::new()), &[]).expect("column");
        let error = RowBatch::new(schema.clone(), Vec::new(), None, vec![text]).unwrap_err();
        assert!(error.problem.contains("declared int64 but holds text"), "{error}");
        let short = ColumnData::new(ColumnValues::Int64(vec![1]), &[]).expect("column");
        assert!(RowBatch::new(schema.clone(), vec![0, 1], None, vec![short]).is_err());
        assert!(ColumnData::new(ColumnValues::Int64(vec![1]), &[1]).is_err(), "null row past the end");
        let fine = ColumnData::new(ColumnValues::Int64(vec![1, 0]), &[1]).expect("column");
        let batch = RowBatch::new(schema, vec![0, 1], None, vec![fine]).expect("batch");
        assert_eq!((batch.value(0, 0), batch.value(1, 0)), (Value::Int64(1), Value::Null));
    }

    #[test]
    fn blobs_are_checked_for_utf8_and_offsets() {
        assert!(Texts::from_blobs(vec![0xff], vec![0, 1]).is_err());
        assert!(Texts::from_blobs("é".into(), vec![0, 1, 2]).is_err(), "splits a character");
        assert!(Texts::from_blobs(b"ab".to_vec(), vec![0, 3]).is_err());
        assert!(Texts::from_blobs(b"ab".to_vec(), vec![0, 2, 1, 2]).is_err());
        assert!(Texts::from_blobs(Vec::new(), Vec::new()).is_err());
        let texts = Texts::from_blobs(b"abc".to_vec(), vec![0, 1, 3]).expect("texts");
        assert_eq!((texts.len(), texts.get(0), texts.get(1), texts.get(2)), (2, "a", "bc", ""));
    }

    #[test]
    fn keys_are_all_or_nothing() {
        let mut batch = RowBatch::empty(every_type());
        let mut row = [Value::Null; 8];
        row[0] = Value::Text("a");
        batch.push_row(0, Some(b"k1"), &row).expect("keyed");
        assert!(batch.push_row(1, None, &row).is_err());
        assert_eq!(batch.key(0), Some(&b"k1"[..]));
        assert_eq!(batch.len(), 1);
    }
}
