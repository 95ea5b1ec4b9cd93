//! Output rows: a batch's rows for one output, written straight into the contract's columns.
//!
//! A plugin declares each output's columns once, as a `const` slice of [`Column`], and fills an
//! [`OutputRows`] over the same slice: [`OutputRows::push`] takes any `Serialize` struct whose
//! fields are the columns in order (names checked), and a custom `serde::Serializer` writes each
//! field into its column's buffer with no text or tree in between. [`OutputRows::row`] writes a
//! row by hand, value by value. [`OutputRows::finish`] hands over the contract's
//! [`OutputBatch`]; [`Outputs`] keeps one [`OutputRows`] per output and the failures, and gives
//! the [`BatchResult`].
//!
//! How a field's value lands in its column:
//!
//! | value                                   | column types                                     |
//! |-----------------------------------------|--------------------------------------------------|
//! | `&str`, `String`, `Cow<str>`, `char`, unit enum variant | text                             |
//! | integers (range-checked)                | int32, int64, timestamp-ms, float64              |
//! | `f32`, `f64`                            | float64                                          |
//! | `bool`                                  | boolean                                          |
//! | a sequence of strings                   | text-list                                        |
//! | anything serializable                   | json, written with `serde_json` (`&RawValue` kept byte for byte) |
//! | `None`, `()`, a field skipped by `skip_serializing_if` | null, if the column is nullable   |
//!
//! Anything else is a [`RowError`] naming the column; the row is then rolled back, so a batch
//! never holds half a row.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

use crate::schema::{Column, ColumnType};
use crate::{BatchResult, Blobs, ColumnData, ColumnValues, Failure, OutputBatch, RecordIn, TextLists};

/// Why a row could not be written: the column at fault, when there is one, and the problem.
///
/// Boxed, so the `Result` every value of every row returns stays one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError(Box<RowProblem>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct RowProblem {
    column: Option<&'static str>,
    message: String,
}

impl RowError {
    fn new(message: impl Into<String>) -> Self {
        RowError(Box::new(RowProblem { column: None, message: message.into() }))
    }

    fn at(column: &'static str, message: impl Into<String>) -> Self {
        RowError(Box::new(RowProblem { column: Some(column), message: message.into() }))
    }

    /// Names `column` unless a column is named already.
    fn in_column(mut self, column: &'static str) -> Self {
        self.0.column.get_or_insert(column);
        self
    }

    /// The column at fault, if the problem is one column's.
    pub fn column(&self) -> Option<&'static str> {
        self.0.column
    }

    /// The problem, without the column.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Input `index` failed whole because its row could not be written, naming the column.
    pub fn into_failure(self, index: u32) -> Failure {
        let RowProblem { column, message } = *self.0;
        Failure { index, field: column.map(str::to_owned), reason: message, part: None }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.column {
            Some(column) => write!(formatter, "{column}: {}", self.0.message),
            None => formatter.write_str(&self.0.message),
        }
    }
}

impl std::error::Error for RowError {}

impl ser::Error for RowError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        RowError::new(message.to_string())
    }
}

/// Byte strings back to back, as the contract's `blobs`: `offsets` starts at 0 and has one
/// entry more than there are values.
#[derive(Debug, Clone)]
struct BlobBuf {
    bytes: Vec<u8>,
    offsets: Vec<u32>,
}

impl BlobBuf {
    fn new() -> Self {
        BlobBuf { bytes: Vec::new(), offsets: vec![0] }
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The last offset, where the next value starts.
    fn end(&self) -> usize {
        self.offsets.last().map_or(0, |&end| end as usize)
    }

    #[inline]
    fn push(&mut self, value: &[u8]) -> Result<(), RowError> {
        self.bytes.extend_from_slice(value);
        self.close()
    }

    /// Ends the value written since the last offset.
    #[inline]
    fn close(&mut self) -> Result<(), RowError> {
        let Ok(end) = u32::try_from(self.bytes.len()) else {
            return Err(too_large("more than 4 GiB of text in one column of one batch"));
        };
        self.offsets.push(end);
        Ok(())
    }

    /// Keeps the first `len` values, and drops any bytes written after them.
    fn truncate(&mut self, len: usize) {
        self.offsets.truncate(len + 1);
        let end = self.end();
        self.bytes.truncate(end);
    }

    fn into_blobs(self) -> Blobs {
        Blobs { bytes: self.bytes, offsets: self.offsets }
    }
}

/// One column's values so far, in the contract's layout for its type.
#[derive(Debug, Clone)]
enum Values {
    Text(BlobBuf),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    Boolean(Vec<bool>),
    TimestampMs(Vec<i64>),
    /// List `i` is `items[offsets[i]..offsets[i + 1]]`.
    TextList {
        items: BlobBuf,
        offsets: Vec<u32>,
    },
    Json(BlobBuf),
}

impl Values {
    fn new(column_type: ColumnType) -> Self {
        match column_type {
            ColumnType::Text => Values::Text(BlobBuf::new()),
            ColumnType::Int32 => Values::Int32(Vec::new()),
            ColumnType::Int64 => Values::Int64(Vec::new()),
            ColumnType::Float64 => Values::Float64(Vec::new()),
            ColumnType::Boolean => Values::Boolean(Vec::new()),
            ColumnType::TimestampMs => Values::TimestampMs(Vec::new()),
            ColumnType::TextList => Values::TextList { items: BlobBuf::new(), offsets: vec![0] },
            ColumnType::Json => Values::Json(BlobBuf::new()),
        }
    }

    fn reserve(&mut self, rows: usize) {
        match self {
            Values::Text(blobs) | Values::Json(blobs) => blobs.offsets.reserve(rows),
            Values::Int32(values) => values.reserve(rows),
            Values::Int64(values) | Values::TimestampMs(values) => values.reserve(rows),
            Values::Float64(values) => values.reserve(rows),
            Values::Boolean(values) => values.reserve(rows),
            Values::TextList { offsets, .. } => offsets.reserve(rows),
        }
    }

    /// The value a null row holds: 0, false, an empty text or list.
    #[inline]
    fn push_placeholder(&mut self) -> Result<(), RowError> {
        match self {
            Values::Text(blobs) | Values::Json(blobs) => return blobs.close(),
            Values::Int32(values) => values.push(0),
            Values::Int64(values) | Values::TimestampMs(values) => values.push(0),
            Values::Float64(values) => values.push(0.0),
            Values::Boolean(values) => values.push(false),
            Values::TextList { items, offsets } => return close_list(items, offsets),
        }
        Ok(())
    }

    fn truncate(&mut self, rows: usize) {
        match self {
            Values::Text(blobs) | Values::Json(blobs) => blobs.truncate(rows),
            Values::Int32(values) => values.truncate(rows),
            Values::Int64(values) | Values::TimestampMs(values) => values.truncate(rows),
            Values::Float64(values) => values.truncate(rows),
            Values::Boolean(values) => values.truncate(rows),
            Values::TextList { items, offsets } => {
                offsets.truncate(rows + 1);
                let end = offsets.last().map_or(0, |&end| end as usize);
                items.truncate(end);
            }
        }
    }

    fn into_column_values(self) -> ColumnValues {
        match self {
            Values::Text(blobs) => ColumnValues::Text(blobs.into_blobs()),
            Values::Int32(values) => ColumnValues::Int32(values),
            Values::Int64(values) => ColumnValues::Int64(values),
            Values::Float64(values) => ColumnValues::Float64(values),
            Values::Boolean(values) => ColumnValues::Boolean(values),
            Values::TimestampMs(values) => ColumnValues::TimestampMs(values),
            Values::TextList { items, offsets } => {
                ColumnValues::TextList(TextLists { items: items.into_blobs(), offsets })
            }
            Values::Json(blobs) => ColumnValues::Json(blobs.into_blobs()),
        }
    }
}

/// Ends the list whose items were pushed since the last list offset.
fn close_list(items: &BlobBuf, offsets: &mut Vec<u32>) -> Result<(), RowError> {
    let Ok(end) = u32::try_from(items.len()) else {
        return Err(too_large("more than 4 Gi texts in one column"));
    };
    offsets.push(end);
    Ok(())
}

/// A batch too large for the contract's 32-bit offsets.
#[cold]
#[inline(never)]
fn too_large(problem: &str) -> RowError {
    RowError::new(problem)
}

/// A null in column `column`, which is not nullable.
#[cold]
#[inline(never)]
fn not_nullable(column: &'static str) -> RowError {
    RowError::at(column, "null in a column that is not nullable")
}

/// One column being filled: its declaration, its values and its null rows.
#[derive(Debug, Clone)]
struct ColumnBuf {
    column: Column,
    values: Values,
    nulls: Vec<u32>,
    /// The address of the last field name found equal to the column's name: a derived
    /// `Serialize` passes the same `&'static str` for every row, so later rows compare addresses
    /// instead of text. Only compared, never read through.
    matched_name: usize,
}

impl ColumnBuf {
    fn new(column: Column) -> Self {
        ColumnBuf { column, values: Values::new(column.column_type), nulls: Vec::new(), matched_name: 0 }
    }

    /// Whether `field` is this column's name.
    #[inline]
    fn is_named(&mut self, field: &'static str) -> bool {
        let address = field.as_ptr() as usize;
        if address == self.matched_name && field.len() == self.column.name.len() {
            return true;
        }
        let matches = field == self.column.name;
        if matches {
            self.matched_name = address;
        }
        matches
    }

    #[inline]
    fn push_null(&mut self, row: u32) -> Result<(), RowError> {
        if !self.column.nullable {
            return Err(not_nullable(self.column.name));
        }
        self.values.push_placeholder()?;
        self.nulls.push(row);
        Ok(())
    }

    /// Writes one value of row `row`, which must be the column's next row.
    fn write<T: Serialize + ?Sized>(&mut self, row: u32, value: &T) -> Result<(), RowError> {
        let name = self.column.name;
        if let Values::Json(blobs) = &mut self.values {
            let start = blobs.bytes.len();
            let mut writer = serde_json::Serializer::new(&mut blobs.bytes);
            value.serialize(JsonCell(&mut writer)).map_err(|error| RowError::at(name, error.to_string()))?;
            // Every JSON value has some text, so nothing written means `None` or `()`: null.
            if blobs.bytes.len() == start {
                self.push_null(row)
            } else {
                blobs.close().map_err(|error| error.in_column(name))
            }
        } else {
            value.serialize(Cell { buf: self, row }).map_err(|error| error.in_column(name))
        }
    }

    fn truncate(&mut self, rows: usize) {
        self.values.truncate(rows);
        while self.nulls.last().is_some_and(|&null| null as usize >= rows) {
            self.nulls.pop();
        }
    }

    fn into_column_data(self) -> ColumnData {
        ColumnData { values: self.values.into_column_values(), nulls: self.nulls }
    }
}

/// The rows one batch sends to one output, column by column.
///
/// Rows are added with [`OutputRows::push`] (a `Serialize` struct) or [`OutputRows::row`] (value
/// by value), in input order. Either every row has a key or none has.
#[derive(Debug, Clone)]
pub struct OutputRows {
    output: String,
    columns: &'static [Column],
    inputs: Vec<u32>,
    /// `None` while the rows have no keys (or there are no rows yet).
    keys: Option<BlobBuf>,
    data: Vec<ColumnBuf>,
}

impl OutputRows {
    /// No rows yet for output `output`, whose columns are `columns` in that order.
    pub fn new(output: &str, columns: &'static [Column]) -> Self {
        OutputRows {
            output: output.to_owned(),
            columns,
            inputs: Vec::new(),
            keys: None,
            data: columns.iter().copied().map(ColumnBuf::new).collect(),
        }
    }

    /// Makes room for `rows` more rows' numbers and offsets (text bytes still grow as needed).
    pub fn reserve(&mut self, rows: usize) {
        self.inputs.reserve(rows);
        if let Some(keys) = &mut self.keys {
            keys.offsets.reserve(rows);
        }
        for column in &mut self.data {
            column.values.reserve(rows);
            if column.column.nullable {
                column.nulls.reserve(rows);
            }
        }
    }

    /// Makes room for about `bytes` more bytes of text in column `column` (a text, json or
    /// text-list column; others ignore it), so a batch whose size is known up front (one
    /// column holding each record's text, say) does not copy its texts again as they grow.
    pub fn reserve_bytes(&mut self, column: &str, bytes: usize) {
        let Some(column) = self.data.iter_mut().find(|buf| buf.column.name == column) else { return };
        match &mut column.values {
            Values::Text(blobs) | Values::Json(blobs) | Values::TextList { items: blobs, .. } => {
                blobs.bytes.reserve(bytes);
            }
            _ => {}
        }
    }

    /// The output's name.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// The output's columns.
    pub fn columns(&self) -> &'static [Column] {
        self.columns
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// The input index of every row, in row order.
    pub fn inputs(&self) -> &[u32] {
        &self.inputs
    }

    /// Adds `row`, made from input `input`, whose fields are this output's columns in order.
    ///
    /// # Errors
    /// A field that is not the next column, a value the column's type cannot hold (an integer
    /// out of range included), a null in a column that is not nullable, a missing column, or a
    /// key where earlier rows had none (or the other way round). Nothing of the row is kept.
    pub fn push<T: Serialize + ?Sized>(
        &mut self,
        input: u32,
        key: Option<&[u8]>,
        row: &T,
    ) -> Result<(), RowError> {
        let rows = self.inputs.len();
        let row_number = self.next_row()?;
        let mut written = row.serialize(RowSerializer { rows: self, row: row_number });
        if written.is_ok() {
            written = self.commit(input, key);
        }
        if written.is_err() {
            self.truncate_columns(rows);
        }
        written
    }

    /// Starts a row made from input `input`, to be written value by value in column order and
    /// ended with [`RowWriter::finish`]; a row dropped unfinished is rolled back.
    #[inline]
    pub fn row<'a>(&'a mut self, input: u32, key: Option<&'a [u8]>) -> RowWriter<'a> {
        let error = self.next_row().err();
        RowWriter { rows: self, input, key, next: 0, error, finished: false }
    }

    /// Keeps only the first `rows` rows.
    pub fn truncate(&mut self, rows: usize) {
        if rows < self.inputs.len() {
            self.inputs.truncate(rows);
            if let Some(keys) = &mut self.keys {
                keys.truncate(rows);
            }
            self.truncate_columns(rows);
        }
    }

    /// Drops the rows made from input `input`, which must be the last ones (rows are pushed in
    /// input order): for a record that fails whole after some of its rows were pushed.
    pub fn discard_input(&mut self, input: u32) {
        let kept = self.inputs.iter().rposition(|&row_input| row_input != input).map_or(0, |last| last + 1);
        self.truncate(kept);
    }

    /// The contract's batch of these rows.
    pub fn finish(self) -> OutputBatch {
        OutputBatch {
            output: self.output,
            inputs: self.inputs,
            keys: self.keys.map(BlobBuf::into_blobs),
            columns: self.data.into_iter().map(ColumnBuf::into_column_data).collect(),
        }
    }

    /// The number the next row will have, if one more row fits.
    fn next_row(&self) -> Result<u32, RowError> {
        u32::try_from(self.inputs.len()).map_err(|_| RowError::new("more than 4 Gi rows in one batch"))
    }

    /// Adds the input and key of the row whose values are written.
    #[inline]
    fn commit(&mut self, input: u32, key: Option<&[u8]>) -> Result<(), RowError> {
        if self.inputs.is_empty() {
            let rows = self.inputs.capacity();
            self.keys = key.map(|_| {
                let mut keys = BlobBuf::new();
                keys.offsets.reserve(rows);
                keys
            });
        }
        match (&mut self.keys, key) {
            (Some(keys), Some(key)) => keys.push(key)?,
            (None, None) => {}
            (Some(_), None) => {
                return Err(RowError::new(format!(
                    "a row without a key, but earlier rows of output `{}` have keys",
                    self.output
                )));
            }
            (None, Some(_)) => {
                return Err(RowError::new(format!(
                    "a row with a key, but earlier rows of output `{}` have none",
                    self.output
                )));
            }
        }
        self.inputs.push(input);
        Ok(())
    }

    /// Drops every column value past row `rows`: the rollback of a row that failed midway.
    fn truncate_columns(&mut self, rows: usize) {
        for column in &mut self.data {
            column.truncate(rows);
        }
    }
}

/// One row written value by value, in column order; see [`OutputRows::row`].
///
/// A mistake (a value of the wrong type, one value too many) is kept and reported by
/// [`RowWriter::finish`], so the calls chain without a `?` each:
/// `rows.row(input, None).text("a").null().finish()?`.
pub struct RowWriter<'a> {
    rows: &'a mut OutputRows,
    input: u32,
    key: Option<&'a [u8]>,
    next: usize,
    error: Option<RowError>,
    finished: bool,
}

impl RowWriter<'_> {
    /// The next column's value, of any type that column takes (see the module docs).
    pub fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> &mut Self {
        self.write(None, value)
    }

    #[inline]
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.put(ColumnType::Text, |values| match values {
            Values::Text(blobs) => blobs.push(value.as_bytes()),
            _ => Ok(()),
        })
    }

    /// Text, or null for `None`.
    #[inline]
    pub fn opt_text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.text(value),
            None => self.null_of(ColumnType::Text),
        }
    }

    #[inline]
    pub fn int32(&mut self, value: i32) -> &mut Self {
        self.put(ColumnType::Int32, |values| {
            if let Values::Int32(values) = values {
                values.push(value);
            }
            Ok(())
        })
    }

    /// An int32, or null for `None`.
    #[inline]
    pub fn opt_int32(&mut self, value: Option<i32>) -> &mut Self {
        match value {
            Some(value) => self.int32(value),
            None => self.null_of(ColumnType::Int32),
        }
    }

    #[inline]
    pub fn int64(&mut self, value: i64) -> &mut Self {
        self.put(ColumnType::Int64, |values| {
            if let Values::Int64(values) = values {
                values.push(value);
            }
            Ok(())
        })
    }

    /// An int64, or null for `None`.
    #[inline]
    pub fn opt_int64(&mut self, value: Option<i64>) -> &mut Self {
        match value {
            Some(value) => self.int64(value),
            None => self.null_of(ColumnType::Int64),
        }
    }

    #[inline]
    pub fn float64(&mut self, value: f64) -> &mut Self {
        self.put(ColumnType::Float64, |values| {
            if let Values::Float64(values) = values {
                values.push(value);
            }
            Ok(())
        })
    }

    #[inline]
    pub fn boolean(&mut self, value: bool) -> &mut Self {
        self.put(ColumnType::Boolean, |values| {
            if let Values::Boolean(values) = values {
                values.push(value);
            }
            Ok(())
        })
    }

    /// Milliseconds since the Unix epoch.
    #[inline]
    pub fn timestamp_ms(&mut self, value: i64) -> &mut Self {
        self.put(ColumnType::TimestampMs, |values| {
            if let Values::TimestampMs(values) = values {
                values.push(value);
            }
            Ok(())
        })
    }

    pub fn text_list<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        self.put(ColumnType::TextList, |values| match values {
            Values::TextList { items: texts, offsets } => {
                for item in items {
                    texts.push(item.as_ref().as_bytes())?;
                }
                close_list(texts, offsets)
            }
            _ => Ok(()),
        })
    }

    /// Any serializable value as JSON text, for a json column (a `&RawValue` is kept as it is).
    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> &mut Self {
        self.write(Some(ColumnType::Json), value)
    }

    /// A json column's value written by `write`, which appends valid JSON text to the column's
    /// bytes (for example a value kept as it came, or an object assembled from such values);
    /// appending nothing makes the value null.
    #[inline]
    pub fn json_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        let row = self.rows.inputs.len() as u32;
        let Some(column) = self.column(ColumnType::Json) else { return self };
        let Values::Json(blobs) = &mut column.values else { return self };
        let start = blobs.bytes.len();
        write(&mut blobs.bytes);
        let closed = if blobs.bytes.len() == start { column.push_null(row) } else { blobs.close() };
        match closed.map_err(|error| error.in_column(column.column.name)) {
            Ok(()) => self,
            Err(error) => self.fail(error),
        }
    }

    /// Null in the next column, which must be nullable.
    #[inline]
    pub fn null(&mut self) -> &mut Self {
        let row = self.rows.inputs.len() as u32;
        let Some(column) = self.any_column() else { return self };
        match column.push_null(row) {
            Ok(()) => self,
            Err(error) => self.fail(error),
        }
    }

    /// Null in the next column, which must be nullable and of type `expected`.
    #[inline]
    fn null_of(&mut self, expected: ColumnType) -> &mut Self {
        let row = self.rows.inputs.len() as u32;
        let Some(column) = self.column(expected) else { return self };
        match column.push_null(row) {
            Ok(()) => self,
            Err(error) => self.fail(error),
        }
    }

    /// Appends one value of type `expected` with `push`, which is handed the column's values
    /// once they are known to be of that type.
    #[inline]
    fn put(
        &mut self,
        expected: ColumnType,
        push: impl FnOnce(&mut Values) -> Result<(), RowError>,
    ) -> &mut Self {
        let Some(column) = self.column(expected) else { return self };
        match push(&mut column.values) {
            Ok(()) => self,
            Err(error) => {
                let error = error.in_column(column.column.name);
                self.fail(error)
            }
        }
    }

    /// The next column, when nothing went wrong yet and it is of type `expected`; else the
    /// mistake is kept and `None` returned.
    #[inline(always)]
    fn column(&mut self, expected: ColumnType) -> Option<&mut ColumnBuf> {
        let next = self.next;
        let column_type = self.any_column()?.column.column_type;
        if column_type != expected {
            let column = self.rows.data[next].column;
            let message = format!("expected {}, found a {expected} value", column.column_type);
            self.fail(RowError::at(column.name, message));
            return None;
        }
        self.rows.data.get_mut(next)
    }

    /// The next column, whatever its type, when nothing went wrong yet; else `None`.
    #[inline(always)]
    fn any_column(&mut self) -> Option<&mut ColumnBuf> {
        if self.error.is_some() {
            return None;
        }
        if self.next >= self.rows.data.len() {
            let error = RowError::new(format!(
                "more values than the {} columns of output `{}`",
                self.rows.columns.len(),
                self.rows.output
            ));
            self.fail(error);
            return None;
        }
        self.next += 1;
        self.rows.data.get_mut(self.next - 1)
    }

    /// Ends the row: it is kept when every column has its value and nothing went wrong.
    ///
    /// # Errors
    /// The first mistake made writing the row, a column left without a value, or a key where
    /// earlier rows had none (or the other way round). Nothing of the row is kept.
    #[inline]
    pub fn finish(&mut self) -> Result<(), RowError> {
        if self.finished {
            return Err(RowError::new("the row is finished already"));
        }
        self.finished = true;
        let rows = self.rows.inputs.len();
        let result = match self.error.take() {
            Some(error) => Err(error),
            None => match self.rows.data.get(self.next) {
                Some(missing) => Err(RowError::at(missing.column.name, "no value")),
                None => self.rows.commit(self.input, self.key),
            },
        };
        if result.is_err() {
            self.rows.truncate_columns(rows);
        }
        result
    }

    fn write<T: Serialize + ?Sized>(&mut self, expected: Option<ColumnType>, value: &T) -> &mut Self {
        if self.error.is_some() {
            return self;
        }
        let row = self.rows.inputs.len() as u32;
        let Some(column) = self.rows.data.get_mut(self.next) else {
            return self.fail(RowError::new(format!(
                "more values than the {} columns of output `{}`",
                self.rows.columns.len(),
                self.rows.output
            )));
        };
        self.next += 1;
        match expected {
            Some(expected) if expected != column.column.column_type => {
                let message = format!("expected {}, found a {expected} value", column.column.column_type);
                let error = RowError::at(column.column.name, message);
                self.fail(error)
            }
            _ => match column.write(row, value) {
                Ok(()) => self,
                Err(error) => self.fail(error),
            },
        }
    }

    fn fail(&mut self, error: RowError) -> &mut Self {
        self.error.get_or_insert(error);
        self
    }
}

impl Drop for RowWriter<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let rows = self.rows.inputs.len();
            self.rows.truncate_columns(rows);
        }
    }
}

/// One [`OutputRows`] per declared output, and the failures: what a batch builds up.
#[derive(Debug, Clone)]
pub struct Outputs {
    outputs: Vec<OutputRows>,
    failures: Vec<Failure>,
}

impl Outputs {
    /// No rows yet for each `(name, columns)` output.
    pub fn new(declared: &[(&str, &'static [Column])]) -> Self {
        Outputs {
            outputs: declared.iter().map(|&(name, columns)| OutputRows::new(name, columns)).collect(),
            failures: Vec::new(),
        }
    }

    /// The rows of output `output`, or `None` when it is not declared.
    pub fn rows(&mut self, output: &str) -> Option<&mut OutputRows> {
        self.outputs.iter_mut().find(|rows| rows.output == output)
    }

    /// Adds a row to output `output` (see [`OutputRows::push`]).
    ///
    /// # Errors
    /// Those of [`OutputRows::push`], or an output that is not declared.
    pub fn push<T: Serialize + ?Sized>(
        &mut self,
        output: &str,
        input: u32,
        key: Option<&[u8]>,
        row: &T,
    ) -> Result<(), RowError> {
        match self.rows(output) {
            Some(rows) => rows.push(input, key, row),
            None => Err(RowError::new(format!("output `{output}` is not declared"))),
        }
    }

    pub fn fail(&mut self, failure: Failure) {
        self.failures.push(failure);
    }

    /// The failures so far.
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }

    /// Drops the rows made from input `input` on every output; they must be the last ones.
    pub fn discard_input(&mut self, input: u32) {
        for rows in &mut self.outputs {
            rows.discard_input(input);
        }
    }

    /// The batch's result: one batch per output that received rows, then the failures.
    pub fn finish(self) -> BatchResult {
        let outputs =
            self.outputs.into_iter().filter(|rows| !rows.is_empty()).map(OutputRows::finish).collect();
        BatchResult { outputs, failures: self.failures }
    }
}

/// The keys of rows that keep their input record's key.
///
/// The contract carries a key for every row of an output batch or for none, while input
/// records may mix: when any record of the batch has a key, a record without one gives its rows
/// an empty key; when none has, rows have no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputKeys {
    keyed: bool,
}

impl InputKeys {
    /// The key rule for rows made from `batch`.
    pub fn of(batch: &[RecordIn]) -> Self {
        InputKeys { keyed: batch.iter().any(|record| record.key.is_some()) }
    }

    /// The key of the rows made from `record`.
    pub fn key<'a>(&self, record: &'a RecordIn) -> Option<&'a [u8]> {
        self.keyed.then(|| record.key.as_deref().unwrap_or_default())
    }
}

/// A value of the wrong kind for a column of `column_type`.
fn kind_error(found: &str, column_type: ColumnType) -> RowError {
    RowError::new(format!("expected {column_type}, found {found}"))
}

/// Serializes a whole row: a struct whose fields are the columns in order.
struct RowSerializer<'a> {
    rows: &'a mut OutputRows,
    row: u32,
}

/// Rejects every method of a serializer but those written out, naming what was found.
macro_rules! reject_scalars {
    ($($method:ident($($arg:ty),*) => $found:literal;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::Ok, Self::Error> {
            Err(self.found($found))
        })*
    };
}

/// The rejections of the compound methods, each returning its `Impossible`.
macro_rules! reject_compounds {
    ($($method:ident($($arg:ty),*) -> $ret:ident => $found:literal;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::$ret, Self::Error> {
            Err(self.found($found))
        })*
    };
}

impl RowSerializer<'_> {
    fn found(&self, found: &str) -> RowError {
        RowError::new(format!(
            "a row of output `{}` must be a struct with one field per column, not {found}",
            self.rows.output
        ))
    }
}

impl<'a> ser::Serializer for RowSerializer<'a> {
    type Ok = ();
    type Error = RowError;
    type SerializeSeq = Impossible<(), RowError>;
    type SerializeTuple = Impossible<(), RowError>;
    type SerializeTupleStruct = Impossible<(), RowError>;
    type SerializeTupleVariant = Impossible<(), RowError>;
    type SerializeMap = Impossible<(), RowError>;
    type SerializeStruct = RowFields<'a>;
    type SerializeStructVariant = Impossible<(), RowError>;

    reject_scalars! {
        serialize_bool(bool) => "a boolean";
        serialize_i8(i8) => "an integer";
        serialize_i16(i16) => "an integer";
        serialize_i32(i32) => "an integer";
        serialize_i64(i64) => "an integer";
        serialize_u8(u8) => "an integer";
        serialize_u16(u16) => "an integer";
        serialize_u32(u32) => "an integer";
        serialize_u64(u64) => "an integer";
        serialize_f32(f32) => "a float";
        serialize_f64(f64) => "a float";
        serialize_char(char) => "a string";
        serialize_str(&str) => "a string";
        serialize_bytes(&[u8]) => "bytes";
        serialize_none() => "null";
        serialize_unit() => "null";
        serialize_unit_struct(&'static str) => "a unit struct";
        serialize_unit_variant(&'static str, u32, &'static str) => "an enum variant";
    }

    reject_compounds! {
        serialize_seq(Option<usize>) -> SerializeSeq => "a sequence";
        serialize_tuple(usize) -> SerializeTuple => "a tuple";
        serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct => "a tuple struct";
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> SerializeTupleVariant => "an enum variant";
        serialize_map(Option<usize>) -> SerializeMap => "a map";
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> SerializeStructVariant => "an enum variant";
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), RowError> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), RowError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), RowError> {
        Err(self.found("an enum variant"))
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<RowFields<'a>, RowError> {
        Ok(RowFields { rows: self.rows, row: self.row, next: 0 })
    }
}

/// The fields of a row, each written into the next column.
struct RowFields<'a> {
    rows: &'a mut OutputRows,
    row: u32,
    next: usize,
}

impl RowFields<'_> {
    /// The next column, which must be named `field`.
    #[inline]
    fn column(&mut self, field: &'static str) -> Result<&mut ColumnBuf, RowError> {
        let next = self.next;
        if !self.rows.data.get_mut(next).is_some_and(|column| column.is_named(field)) {
            return Err(self.field_error(field));
        }
        self.next += 1;
        Ok(&mut self.rows.data[next])
    }

    /// Why `field` is not the next column.
    #[cold]
    #[inline(never)]
    fn field_error(&self, field: &'static str) -> RowError {
        match self.rows.data.get(self.next) {
            None => RowError::new(format!(
                "field `{field}` is not a column: output `{}` has {} columns",
                self.rows.output,
                self.rows.columns.len()
            )),
            Some(column) => RowError::new(format!(
                "field `{field}` where column `{}` of output `{}` comes next",
                column.column.name, self.rows.output
            )),
        }
    }
}

impl ser::SerializeStruct for RowFields<'_> {
    type Ok = ();
    type Error = RowError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        field: &'static str,
        value: &T,
    ) -> Result<(), RowError> {
        let row = self.row;
        self.column(field)?.write(row, value)
    }

    fn skip_field(&mut self, field: &'static str) -> Result<(), RowError> {
        let row = self.row;
        self.column(field)?.push_null(row)
    }

    fn end(self) -> Result<(), RowError> {
        match self.rows.data.get(self.next) {
            Some(missing) => Err(RowError::at(missing.column.name, "missing from the row")),
            None => Ok(()),
        }
    }
}

/// Serializes one value into a column of any type but json.
struct Cell<'a> {
    buf: &'a mut ColumnBuf,
    row: u32,
}

impl Cell<'_> {
    fn found(&self, found: &str) -> RowError {
        kind_error(found, self.buf.column.column_type)
    }

    fn integer(self, value: i128) -> Result<(), RowError> {
        let out_of_range =
            |type_name: &str| RowError::new(format!("{value} is out of the {type_name} range"));
        match &mut self.buf.values {
            Values::Int32(values) => values.push(i32::try_from(value).map_err(|_| out_of_range("int32"))?),
            Values::Int64(values) => values.push(i64::try_from(value).map_err(|_| out_of_range("int64"))?),
            Values::TimestampMs(values) => {
                values.push(i64::try_from(value).map_err(|_| out_of_range("timestamp-ms"))?);
            }
            Values::Float64(values) => values.push(value as f64),
            _ => return Err(self.found("an integer")),
        }
        Ok(())
    }

    fn text(self, value: &str) -> Result<(), RowError> {
        match &mut self.buf.values {
            Values::Text(blobs) => blobs.push(value.as_bytes()),
            _ => Err(self.found("a string")),
        }
    }
}

impl<'a> ser::Serializer for Cell<'a> {
    type Ok = ();
    type Error = RowError;
    type SerializeSeq = ListItems<'a>;
    type SerializeTuple = ListItems<'a>;
    type SerializeTupleStruct = Impossible<(), RowError>;
    type SerializeTupleVariant = Impossible<(), RowError>;
    type SerializeMap = Impossible<(), RowError>;
    type SerializeStruct = Impossible<(), RowError>;
    type SerializeStructVariant = Impossible<(), RowError>;

    reject_scalars! {
        serialize_bytes(&[u8]) => "bytes";
    }

    reject_compounds! {
        serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct => "a tuple struct";
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> SerializeTupleVariant => "an enum variant with data";
        serialize_map(Option<usize>) -> SerializeMap => "a map";
        serialize_struct(&'static str, usize) -> SerializeStruct => "a struct";
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> SerializeStructVariant => "an enum variant with data";
    }

    fn serialize_bool(self, value: bool) -> Result<(), RowError> {
        match &mut self.buf.values {
            Values::Boolean(values) => {
                values.push(value);
                Ok(())
            }
            _ => Err(self.found("a boolean")),
        }
    }

    fn serialize_i8(self, value: i8) -> Result<(), RowError> {
        self.integer(value.into())
    }

    fn serialize_i16(self, value: i16) -> Result<(), RowError> {
        self.integer(value.into())
    }

    fn serialize_i32(self, value: i32) -> Result<(), RowError> {
        self.integer(value.into())
    }

    fn serialize_i64(self, value: i64) -> Result<(), RowError> {
        self.integer(value.into())
    }

    fn serialize_i128(self, value: i128) -> Result<(), RowError> {
        self.integer(value)
    }

    fn serialize_u8(self, value: u8) -> Result<(), RowError> {
        self.integer(value.into())
    }

    fn serialize_u16(self, value: u16) -> Result<(), RowError> {
        self.integer(value.into())
    }

    fn serialize_u32(self, value: u32) -> Result<(), RowError> {
        self.integer(value.into())
    }

    fn serialize_u64(self, value: u64) -> Result<(), RowError> {
        self.integer(value.into())
    }

    fn serialize_u128(self, value: u128) -> Result<(), RowError> {
        if let Ok(value) = i128::try_from(value) {
            return self.integer(value);
        }
        match &mut self.buf.values {
            Values::Float64(values) => {
                values.push(value as f64);
                Ok(())
            }
            Values::Int32(_) | Values::Int64(_) | Values::TimestampMs(_) => {
                Err(RowError::new(format!("{value} is out of the {} range", self.buf.column.column_type)))
            }
            _ => Err(self.found("an integer")),
        }
    }

    fn serialize_f32(self, value: f32) -> Result<(), RowError> {
        self.serialize_f64(value.into())
    }

    fn serialize_f64(self, value: f64) -> Result<(), RowError> {
        match &mut self.buf.values {
            Values::Float64(values) => {
                values.push(value);
                Ok(())
            }
            _ => Err(self.found("a float")),
        }
    }

    fn serialize_char(self, value: char) -> Result<(), RowError> {
        self.text(value.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, value: &str) -> Result<(), RowError> {
        self.text(value)
    }

    fn serialize_none(self) -> Result<(), RowError> {
        self.buf.push_null(self.row)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), RowError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), RowError> {
        self.buf.push_null(self.row)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), RowError> {
        self.buf.push_null(self.row)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), RowError> {
        self.text(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), RowError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), RowError> {
        Err(self.found("an enum variant with data"))
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<ListItems<'a>, RowError> {
        let column_type = self.buf.column.column_type;
        match &mut self.buf.values {
            Values::TextList { items, offsets } => Ok(ListItems { items, offsets }),
            _ => Err(kind_error("a sequence", column_type)),
        }
    }

    fn serialize_tuple(self, len: usize) -> Result<ListItems<'a>, RowError> {
        self.serialize_seq(Some(len))
    }
}

/// The items of one text-list value.
struct ListItems<'a> {
    items: &'a mut BlobBuf,
    offsets: &'a mut Vec<u32>,
}

impl ser::SerializeSeq for ListItems<'_> {
    type Ok = ();
    type Error = RowError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RowError> {
        value.serialize(ListItem(self.items))
    }

    fn end(self) -> Result<(), RowError> {
        close_list(self.items, self.offsets)
    }
}

impl ser::SerializeTuple for ListItems<'_> {
    type Ok = ();
    type Error = RowError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RowError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<(), RowError> {
        ser::SerializeSeq::end(self)
    }
}

/// Serializes one item of a text-list: a string.
struct ListItem<'a>(&'a mut BlobBuf);

impl ListItem<'_> {
    fn found(&self, found: &str) -> RowError {
        RowError::new(format!("{found} in a text-list, which holds only strings"))
    }
}

impl ser::Serializer for ListItem<'_> {
    type Ok = ();
    type Error = RowError;
    type SerializeSeq = Impossible<(), RowError>;
    type SerializeTuple = Impossible<(), RowError>;
    type SerializeTupleStruct = Impossible<(), RowError>;
    type SerializeTupleVariant = Impossible<(), RowError>;
    type SerializeMap = Impossible<(), RowError>;
    type SerializeStruct = Impossible<(), RowError>;
    type SerializeStructVariant = Impossible<(), RowError>;

    reject_scalars! {
        serialize_bool(bool) => "a boolean";
        serialize_i8(i8) => "an integer";
        serialize_i16(i16) => "an integer";
        serialize_i32(i32) => "an integer";
        serialize_i64(i64) => "an integer";
        serialize_u8(u8) => "an integer";
        serialize_u16(u16) => "an integer";
        serialize_u32(u32) => "an integer";
        serialize_u64(u64) => "an integer";
        serialize_f32(f32) => "a float";
        serialize_f64(f64) => "a float";
        serialize_bytes(&[u8]) => "bytes";
        serialize_none() => "null";
        serialize_unit() => "null";
        serialize_unit_struct(&'static str) => "null";
    }

    reject_compounds! {
        serialize_seq(Option<usize>) -> SerializeSeq => "a sequence";
        serialize_tuple(usize) -> SerializeTuple => "a tuple";
        serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct => "a tuple struct";
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> SerializeTupleVariant => "an enum variant with data";
        serialize_map(Option<usize>) -> SerializeMap => "a map";
        serialize_struct(&'static str, usize) -> SerializeStruct => "a struct";
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> SerializeStructVariant => "an enum variant with data";
    }

    fn serialize_char(self, value: char) -> Result<(), RowError> {
        self.0.push(value.encode_utf8(&mut [0; 4]).as_bytes())
    }

    fn serialize_str(self, value: &str) -> Result<(), RowError> {
        self.0.push(value.as_bytes())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), RowError> {
        value.serialize(self)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), RowError> {
        self.0.push(variant.as_bytes())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), RowError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), RowError> {
        Err(self.found("an enum variant with data"))
    }
}

/// Serializes a json column's value with `serde_json`, except that a top-level `None` or `()`
/// writes nothing, which the column takes as null.
struct JsonCell<'a, 'b>(&'a mut serde_json::Serializer<&'b mut Vec<u8>>);

type JsonCompound<'a, 'b> = serde_json::ser::Compound<'a, &'b mut Vec<u8>, serde_json::ser::CompactFormatter>;

/// Forwards scalar methods to the `serde_json` serializer.
macro_rules! forward_scalars {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $method(self, $($arg: $ty),*) -> Result<(), serde_json::Error> {
            ser::Serializer::$method(self.0, $($arg),*)
        })*
    };
}

/// Forwards compound methods to the `serde_json` serializer.
macro_rules! forward_compounds {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $method(self, $($arg: $ty),*) -> Result<JsonCompound<'a, 'b>, serde_json::Error> {
            ser::Serializer::$method(self.0, $($arg),*)
        })*
    };
}

impl<'a, 'b> ser::Serializer for JsonCell<'a, 'b> {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = JsonCompound<'a, 'b>;
    type SerializeTuple = JsonCompound<'a, 'b>;
    type SerializeTupleStruct = JsonCompound<'a, 'b>;
    type SerializeTupleVariant = JsonCompound<'a, 'b>;
    type SerializeMap = JsonCompound<'a, 'b>;
    type SerializeStruct = JsonCompound<'a, 'b>;
    type SerializeStructVariant = JsonCompound<'a, 'b>;

    forward_scalars! {
        serialize_bool(value: bool);
        serialize_i8(value: i8);
        serialize_i16(value: i16);
        serialize_i32(value: i32);
        serialize_i64(value: i64);
        serialize_i128(value: i128);
        serialize_u8(value: u8);
        serialize_u16(value: u16);
        serialize_u32(value: u32);
        serialize_u64(value: u64);
        serialize_u128(value: u128);
        serialize_f32(value: f32);
        serialize_f64(value: f64);
        serialize_char(value: char);
        serialize_str(value: &str);
        serialize_bytes(value: &[u8]);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    forward_compounds! {
        serialize_seq(len: Option<usize>);
        serialize_tuple(len: usize);
        serialize_tuple_struct(name: &'static str, len: usize);
        serialize_tuple_variant(name: &'static str, index: u32, variant: &'static str, len: usize);
        serialize_map(len: Option<usize>);
        serialize_struct(name: &'static str, len: usize);
        serialize_struct_variant(name: &'static str, index: u32, variant: &'static str, len: usize);
    }

    fn serialize_none(self) -> Result<(), serde_json::Error> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), serde_json::Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), serde_json::Error> {
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), serde_json::Error> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        ser::Serializer::serialize_newtype_struct(self.0, name, value)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        ser::Serializer::serialize_newtype_variant(self.0, name, index, variant, value)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use serde_json::value::RawValue;

    use super::*;
    use crate::OutputInfo;
    use crate::render::rows_json;

    const COLUMNS: &[Column] = &[
        Column::required("id", ColumnType::Text),
        Column::nullable("count", ColumnType::Int32),
        Column::nullable("total", ColumnType::Int64),
        Column::nullable("ratio", ColumnType::Float64),
        Column::nullable("on", ColumnType::Boolean),
        Column::nullable("at", ColumnType::TimestampMs),
        Column::nullable("tags", ColumnType::TextList),
        Column::nullable("extra", ColumnType::Json),
    ];

    #[derive(Serialize, Default)]
    struct Row<'a> {
        id: Cow<'a, str>,
        count: Option<i64>,
        total: Option<u64>,
        ratio: Option<f64>,
        on: Option<bool>,
        at: Option<i64>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tags: Vec<&'a str>,
        extra: Option<&'a RawValue>,
    }

    fn rendered(rows: OutputRows) -> Vec<String> {
        let info = OutputInfo::new(rows.output(), rows.columns());
        rows_json(&info, &rows.finish()).unwrap()
    }

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn struct_fields_land_in_their_columns() {
        let mut rows = OutputRows::new("out", COLUMNS);
        let extra = raw(r#"{"b": 1.50, "a":[ ]}"#);
        let full = Row {
            id: "é\"1".into(),
            count: Some(-7),
            total: Some(1 << 40),
            ratio: Some(0.25),
            on: Some(false),
            at: Some(1_513_299_569_000),
            tags: vec!["a", "b c"],
            extra: Some(extra),
        };
        rows.push(3, None, &full).unwrap();
        rows.push(4, None, &Row { id: "2".into(), ..Row::default() }).unwrap();
        assert_eq!(rows.inputs(), [3, 4]);
        assert_eq!(
            rendered(rows),
            [
                r#"{"id":"é\"1","count":-7,"total":1099511627776,"ratio":0.25,"on":false,"at":1513299569000,"tags":["a","b c"],"extra":{"b": 1.50, "a":[ ]}}"#,
                r#"{"id":"2"}"#,
            ]
        );
    }

    #[test]
    fn nulls_are_listed_and_hold_placeholders() {
        let mut rows = OutputRows::new("out", COLUMNS);
        rows.push(0, None, &Row { id: "1".into(), count: Some(5), ..Row::default() }).unwrap();
        rows.push(0, None, &Row { id: "2".into(), ..Row::default() }).unwrap();
        let batch = rows.finish();
        assert_eq!(batch.columns[1], ColumnData { values: ColumnValues::Int32(vec![5, 0]), nulls: vec![1] });
        assert_eq!(
            batch.columns[6],
            ColumnData {
                values: ColumnValues::TextList(TextLists {
                    items: Blobs { bytes: Vec::new(), offsets: vec![0] },
                    offsets: vec![0, 0, 0]
                }),
                nulls: vec![0, 1]
            }
        );
        assert_eq!(
            batch.columns[7],
            ColumnData {
                values: ColumnValues::Json(Blobs { bytes: Vec::new(), offsets: vec![0, 0, 0] }),
                nulls: vec![0, 1]
            }
        );
    }

    #[test]
    fn json_columns_take_any_serializable_value_and_none_is_null() {
        const JSON: &[Column] = &[Column::nullable("value", ColumnType::Json)];
        #[derive(Serialize)]
        struct Json<T> {
            value: T,
        }
        let mut rows = OutputRows::new("out", JSON);
        let map: BTreeMap<&str, Cow<RawValue>> = [("k", Cow::Borrowed(raw("[1,2]")))].into();
        rows.push(0, None, &Json { value: map }).unwrap();
        rows.push(1, None, &Json { value: vec!["a", "b"] }).unwrap();
        rows.push(2, None, &Json { value: "text" }).unwrap();
        rows.push(3, None, &Json { value: Some(Some(7)) }).unwrap();
        rows.push(4, None, &Json { value: None::<i32> }).unwrap();
        rows.push(5, None, &Json { value: [None::<i32>] }).unwrap();
        assert_eq!(
            rendered(rows),
            [
                r#"{"value":{"k":[1,2]}}"#,
                r#"{"value":["a","b"]}"#,
                r#"{"value":"text"}"#,
                r#"{"value":7}"#,
                "{}",
                r#"{"value":[null]}"#
            ]
        );
    }

    #[test]
    fn a_field_out_of_column_order_is_refused_and_leaves_nothing() {
        #[derive(Serialize)]
        struct Swapped {
            count: i32,
            id: &'static str,
        }
        let mut rows = OutputRows::new("out", COLUMNS);
        let error = rows.push(0, None, &Swapped { count: 1, id: "a" }).unwrap_err();
        assert_eq!(error.to_string(), "field `count` where column `id` of output `out` comes next");
        assert!(rows.is_empty());
    }

    #[test]
    fn a_missing_or_extra_column_is_refused() {
        #[derive(Serialize)]
        struct Short {
            id: &'static str,
        }
        let mut rows = OutputRows::new("out", COLUMNS);
        let error = rows.push(0, None, &Short { id: "a" }).unwrap_err();
        assert_eq!((error.column(), error.message()), (Some("count"), "missing from the row"));
        const ONE: &[Column] = &[Column::required("id", ColumnType::Text)];
        #[derive(Serialize)]
        struct Long {
            id: &'static str,
            more: i32,
        }
        let mut rows = OutputRows::new("one", ONE);
        let error = rows.push(0, None, &Long { id: "a", more: 1 }).unwrap_err();
        assert_eq!(error.to_string(), "field `more` is not a column: output `one` has 1 columns");
        assert!(rows.is_empty());
    }

    #[test]
    fn values_the_column_cannot_hold_are_refused_naming_the_column() {
        let mut rows = OutputRows::new("out", COLUMNS);
        let too_big = Row { id: "a".into(), count: Some(i64::from(i32::MAX) + 1), ..Row::default() };
        assert_eq!(
            rows.push(0, None, &too_big).unwrap_err().to_string(),
            "count: 2147483648 is out of the int32 range"
        );
        let too_big = Row { id: "a".into(), total: Some(u64::MAX), ..Row::default() };
        assert_eq!(
            rows.push(0, None, &too_big).unwrap_err().to_string(),
            "total: 18446744073709551615 is out of the int64 range"
        );
        #[derive(Serialize)]
        struct WrongType {
            id: i32,
        }
        const ONE: &[Column] = &[Column::required("id", ColumnType::Text)];
        let mut one = OutputRows::new("one", ONE);
        assert_eq!(
            one.push(0, None, &WrongType { id: 1 }).unwrap_err().to_string(),
            "id: expected text, found an integer"
        );
        #[derive(Serialize)]
        struct Null {
            id: Option<&'static str>,
        }
        let error = one.push(0, None, &Null { id: None }).unwrap_err();
        assert_eq!(error.to_string(), "id: null in a column that is not nullable");
        let failure = error.into_failure(9);
        assert_eq!(
            (failure.index, failure.field.as_deref(), failure.reason.as_str()),
            (9, Some("id"), "null in a column that is not nullable")
        );
        assert!(rows.is_empty() && one.is_empty());
    }

    #[test]
    fn a_row_failing_midway_is_rolled_back_whole() {
        #[derive(Serialize)]
        struct BadTags<'a> {
            id: &'a str,
            count: i32,
            total: i64,
            ratio: f64,
            on: bool,
            at: i64,
            tags: (&'a str, i32),
            extra: (),
        }
        let mut rows = OutputRows::new("out", COLUMNS);
        rows.push(
            0,
            None,
            &Row { id: "kept".into(), tags: vec!["t"], extra: Some(raw("1")), ..Row::default() },
        )
        .unwrap();
        let bad = BadTags {
            id: "gone",
            count: 1,
            total: 2,
            ratio: 3.0,
            on: true,
            at: 4,
            tags: ("x", 5),
            extra: (),
        };
        let error = rows.push(1, None, &bad).unwrap_err();
        assert_eq!(error.to_string(), "tags: an integer in a text-list, which holds only strings");
        let failing_json =
            Row { id: "gone too".into(), extra: Some(raw("2")), tags: vec!["y"], ..Row::default() };
        let mut writer = rows.row(2, None);
        writer
            .text(&failing_json.id)
            .int32(1)
            .int64(2)
            .float64(3.0)
            .boolean(true)
            .timestamp_ms(4)
            .text_list(&["y"]);
        drop(writer);
        rows.push(3, None, &Row { id: "also kept".into(), ..Row::default() }).unwrap();
        assert_eq!(rendered(rows), [r#"{"id":"kept","tags":["t"],"extra":1}"#, r#"{"id":"also kept"}"#]);
    }

    #[test]
    fn keys_are_on_every_row_or_none() {
        const ONE: &[Column] = &[Column::required("id", ColumnType::Text)];
        let mut keyed = OutputRows::new("one", ONE);
        keyed.row(0, Some(b"k0")).text("a").finish().unwrap();
        keyed.row(1, Some(b"")).text("b").finish().unwrap();
        let error = keyed.row(2, None).text("c").finish().unwrap_err();
        assert_eq!(error.to_string(), "a row without a key, but earlier rows of output `one` have keys");
        assert_eq!(keyed.len(), 2);
        let batch = keyed.finish();
        assert_eq!(batch.keys, Some(Blobs { bytes: b"k0".to_vec(), offsets: vec![0, 2, 2] }));
        assert_eq!(
            batch.columns[0].values,
            ColumnValues::Text(Blobs { bytes: b"ab".to_vec(), offsets: vec![0, 1, 2] })
        );

        let mut unkeyed = OutputRows::new("one", ONE);
        unkeyed.row(0, None).text("a").finish().unwrap();
        let error = unkeyed.row(1, Some(b"k")).text("b").finish().unwrap_err();
        assert_eq!(error.to_string(), "a row with a key, but earlier rows of output `one` have none");
        assert_eq!(unkeyed.finish().keys, None);

        let mut emptied = OutputRows::new("one", ONE);
        emptied.row(0, None).text("a").finish().unwrap();
        emptied.discard_input(0);
        emptied.row(1, Some(b"k")).text("b").finish().unwrap();
        assert_eq!(emptied.finish().keys, Some(Blobs { bytes: b"k".to_vec(), offsets: vec![0, 1] }));
    }

    #[test]
    fn row_writer_checks_types_and_counts() {
        const TWO: &[Column] =
            &[Column::required("id", ColumnType::Text), Column::nullable("n", ColumnType::Int64)];
        let mut rows = OutputRows::new("two", TWO);
        let error = rows.row(0, None).int64(1).text("a").finish().unwrap_err();
        assert_eq!(error.to_string(), "id: expected text, found a int64 value");
        let error = rows.row(0, None).text("a").finish().unwrap_err();
        assert_eq!(error.to_string(), "n: no value");
        let error = rows.row(0, None).text("a").null().null().finish().unwrap_err();
        assert_eq!(error.to_string(), "more values than the 2 columns of output `two`");
        let error = rows.row(0, None).null().finish().unwrap_err();
        assert_eq!(error.to_string(), "id: null in a column that is not nullable");
        assert!(rows.is_empty());
        rows.row(0, None).text("a").value(&7_u8).finish().unwrap();
        rows.row(1, None).value("b").null().finish().unwrap();
        assert_eq!(rendered(rows), [r#"{"id":"a","n":7}"#, r#"{"id":"b"}"#]);
    }

    #[test]
    fn rows_of_a_failed_input_are_discarded_on_every_output() {
        const ONE: &[Column] = &[Column::required("id", ColumnType::Text)];
        let mut outputs = Outputs::new(&[("a", ONE), ("b", ONE), ("c", ONE)]);
        #[derive(Serialize)]
        struct Id<'a> {
            id: &'a str,
        }
        outputs.push("a", 0, None, &Id { id: "0a" }).unwrap();
        outputs.push("a", 1, None, &Id { id: "1a" }).unwrap();
        outputs.push("b", 1, None, &Id { id: "1b" }).unwrap();
        outputs.push("a", 1, None, &Id { id: "1a again" }).unwrap();
        outputs.discard_input(1);
        outputs.fail(Failure::whole(1, "bad"));
        outputs.push("b", 2, None, &Id { id: "2b" }).unwrap();
        let error = outputs.push("d", 2, None, &Id { id: "2d" }).unwrap_err();
        assert_eq!(error.to_string(), "output `d` is not declared");
        assert_eq!(outputs.failures().len(), 1);
        let result = outputs.finish();
        let summary: Vec<_> =
            result.outputs.iter().map(|batch| (batch.output.as_str(), batch.inputs.clone())).collect();
        assert_eq!(summary, [("a", vec![0]), ("b", vec![2])]);
        assert_eq!(result.failures, [Failure::whole(1, "bad")]);
        assert_eq!(result.row_count(), 2);
    }

    #[test]
    fn input_keys_give_every_row_a_key_once_one_record_has_one() {
        let keyed = RecordIn { key: Some(b"k".to_vec()), value: Vec::new(), headers: Vec::new() };
        let unkeyed = RecordIn::from_value("");
        let mixed = InputKeys::of(&[unkeyed.clone(), keyed.clone()]);
        assert_eq!((mixed.key(&keyed), mixed.key(&unkeyed)), (Some(&b"k"[..]), Some(&b""[..])));
        let none = InputKeys::of(std::slice::from_ref(&unkeyed));
        assert_eq!(none.key(&unkeyed), None);
    }

    #[test]
    fn only_a_struct_is_a_row() {
        const ONE: &[Column] = &[Column::required("id", ColumnType::Text)];
        let mut rows = OutputRows::new("one", ONE);
        let error = rows.push(0, None, &vec![1, 2]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a row of output `one` must be a struct with one field per column, not a sequence"
        );
        let map: BTreeMap<&str, &str> = [("id", "a")].into();
        assert!(rows.push(0, None, &map).is_err());
        assert!(rows.is_empty());
    }
}
