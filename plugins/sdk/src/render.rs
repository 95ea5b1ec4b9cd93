//! Reading an [`OutputBatch`] back: checking it against its output's declared columns, and
//! rendering a row as a JSON object.
//!
//! A row renders as a compact JSON object of its columns in declared order, as the host renders
//! rows that travel as JSON (to a chained step, Kafka, an HTTP reply): a null is left out; text
//! is a JSON string; int32, int64 and timestamp-ms are integers; float64 is a number (left out
//! when not finite); boolean is `true`/`false`; text-list is an array of strings; json is its
//! text as it is. Samples (`expected.json`) and plugin tests read rows this way.

use std::fmt::Write as _;

use crate::schema::ColumnType;
use crate::{BatchResult, Blobs, ColumnData, ColumnValues, OutputBatch, OutputInfo, TextLists};

/// Checks that `batch` holds well-formed rows of `info`'s columns, and returns how many rows.
///
/// Well formed: one input (and key, when there are keys) per row; every declared column, in
/// order, with a value of its type per row; offsets that start at 0, never decrease and end at
/// the end of their bytes; UTF-8 text and valid JSON; nulls ascending, within the rows, and only
/// in nullable columns.
///
/// # Errors
/// The first problem found, as a sentence naming the column.
pub fn check_batch(info: &OutputInfo, batch: &OutputBatch) -> Result<usize, String> {
    let rows = batch.inputs.len();
    if batch.output != info.name {
        return Err(format!("the batch is for output `{}`, not `{}`", batch.output, info.name));
    }
    if let Some(keys) = &batch.keys {
        let count = check_blobs(keys).map_err(|problem| format!("keys: {problem}"))?;
        if count != rows {
            return Err(format!("{count} keys for {rows} rows"));
        }
    }
    if batch.columns.len() != info.columns.len() {
        return Err(format!(
            "{} columns, but output `{}` declares {}",
            batch.columns.len(),
            info.name,
            info.columns.len()
        ));
    }
    for (data, column) in batch.columns.iter().zip(&info.columns) {
        check_column(data, column.type_.into(), column.nullable, rows)
            .map_err(|problem| format!("column `{}`: {problem}", column.name))?;
    }
    Ok(rows)
}

fn check_column(data: &ColumnData, declared: ColumnType, nullable: bool, rows: usize) -> Result<(), String> {
    let (found, count) = match &data.values {
        ColumnValues::Text(blobs) => (ColumnType::Text, check_texts(blobs)?),
        ColumnValues::Json(blobs) => {
            let count = check_blobs(blobs)?;
            let nulls = &data.nulls;
            for index in (0..count).filter(|index| !is_null(nulls, *index)) {
                let text = blob(blobs, index);
                serde_json::from_slice::<serde::de::IgnoredAny>(text)
                    .map_err(|error| format!("row {index} is not valid JSON: {error}"))?;
            }
            (ColumnType::Json, count)
        }
        ColumnValues::Int32(values) => (ColumnType::Int32, values.len()),
        ColumnValues::Int64(values) => (ColumnType::Int64, values.len()),
        ColumnValues::Float64(values) => (ColumnType::Float64, values.len()),
        ColumnValues::Boolean(values) => (ColumnType::Boolean, values.len()),
        ColumnValues::TimestampMs(values) => (ColumnType::TimestampMs, values.len()),
        ColumnValues::TextList(lists) => (ColumnType::TextList, check_text_lists(lists)?),
    };
    if found != declared {
        return Err(format!("expected {declared} values, found {found}"));
    }
    if count != rows {
        return Err(format!("{count} values for {rows} rows"));
    }
    if !data.nulls.windows(2).all(|pair| pair[0] < pair[1]) {
        return Err("nulls are not in ascending order".to_owned());
    }
    if let Some(&last) = data.nulls.last()
        && last as usize >= rows
    {
        return Err(format!("null row {last} of {rows} rows"));
    }
    if !nullable && let Some(first) = data.nulls.first() {
        return Err(format!("row {first} is null in a column that is not nullable"));
    }
    Ok(())
}

/// Checks the offsets of `blobs` and returns how many values it holds.
fn check_blobs(blobs: &Blobs) -> Result<usize, String> {
    check_offsets(&blobs.offsets, blobs.bytes.len())
}

fn check_offsets(offsets: &[u32], end: usize) -> Result<usize, String> {
    if offsets.first() != Some(&0) {
        return Err("offsets do not start at 0".to_owned());
    }
    if !offsets.windows(2).all(|pair| pair[0] <= pair[1]) {
        return Err("offsets decrease".to_owned());
    }
    let last = offsets.last().map_or(0, |&last| last as usize);
    if last != end {
        return Err(format!("offsets end at {last}, but there are {end} bytes or items"));
    }
    Ok(offsets.len() - 1)
}

fn check_texts(blobs: &Blobs) -> Result<usize, String> {
    let count = check_blobs(blobs)?;
    for index in 0..count {
        std::str::from_utf8(blob(blobs, index))
            .map_err(|error| format!("row {index} is not UTF-8: {error}"))?;
    }
    Ok(count)
}

fn check_text_lists(lists: &TextLists) -> Result<usize, String> {
    let items = check_texts(&lists.items).map_err(|problem| format!("items: {problem}"))?;
    check_offsets(&lists.offsets, items)
}

/// Value `index` of checked `blobs`.
fn blob(blobs: &Blobs, index: usize) -> &[u8] {
    let start = blobs.offsets[index] as usize;
    let end = blobs.offsets[index + 1] as usize;
    &blobs.bytes[start..end]
}

fn text(blobs: &Blobs, index: usize) -> &str {
    std::str::from_utf8(blob(blobs, index)).unwrap_or_default()
}

fn is_null(nulls: &[u32], row: usize) -> bool {
    u32::try_from(row).is_ok_and(|row| nulls.binary_search(&row).is_ok())
}

/// Row `row` of `batch` (checked with [`check_batch`]) as a compact JSON object, appended to
/// `out`; see the module docs for how each type is written.
pub fn write_row_json(info: &OutputInfo, batch: &OutputBatch, row: usize, out: &mut String) {
    out.push('{');
    let mut first = true;
    for (data, column) in batch.columns.iter().zip(&info.columns) {
        if is_null(&data.nulls, row) {
            continue;
        }
        if let ColumnValues::Float64(values) = &data.values
            && !values[row].is_finite()
        {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_json_string(&column.name, out);
        out.push(':');
        match &data.values {
            ColumnValues::Text(blobs) => write_json_string(text(blobs, row), out),
            ColumnValues::Json(blobs) => out.push_str(text(blobs, row)),
            // Writing into a String cannot fail.
            ColumnValues::Int32(values) => {
                let _ = write!(out, "{}", values[row]);
            }
            ColumnValues::Int64(values) | ColumnValues::TimestampMs(values) => {
                let _ = write!(out, "{}", values[row]);
            }
            ColumnValues::Float64(values) => {
                let _ = write!(out, "{}", values[row]);
            }
            ColumnValues::Boolean(values) => out.push_str(if values[row] { "true" } else { "false" }),
            ColumnValues::TextList(lists) => {
                out.push('[');
                let (start, end) = (lists.offsets[row] as usize, lists.offsets[row + 1] as usize);
                for item in start..end {
                    if item > start {
                        out.push(',');
                    }
                    write_json_string(text(&lists.items, item), out);
                }
                out.push(']');
            }
        }
    }
    out.push('}');
}

/// Every row of `batch` as a compact JSON object, after checking the batch against `info`.
///
/// # Errors
/// What [`check_batch`] finds.
pub fn rows_json(info: &OutputInfo, batch: &OutputBatch) -> Result<Vec<String>, String> {
    let rows = check_batch(info, batch)?;
    Ok((0..rows)
        .map(|row| {
            let mut out = String::new();
            write_row_json(info, batch, row, &mut out);
            out
        })
        .collect())
}

/// One row of a batch result, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedRow {
    pub output: String,
    /// The index of the input record the row came from.
    pub input: u32,
    pub key: Option<Vec<u8>>,
    /// The row as a compact JSON object (see the module docs).
    pub json: String,
}

impl RenderedRow {
    /// The row as a JSON value, for tests that compare fields.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.json).unwrap_or_default()
    }
}

/// Every row of `result`, in input order (rows of one input in the order of the result's
/// outputs, then in row order), after checking each batch against its declared output.
///
/// # Errors
/// A batch of an output that is not in `outputs`, two batches for one output, or what
/// [`check_batch`] finds.
pub fn result_rows(outputs: &[OutputInfo], result: &BatchResult) -> Result<Vec<RenderedRow>, String> {
    let mut rows = Vec::new();
    for (position, batch) in result.outputs.iter().enumerate() {
        let name = &batch.output;
        let Some(info) = outputs.iter().find(|info| &info.name == name) else {
            return Err(format!("output `{name}` is not declared"));
        };
        if result.outputs[..position].iter().any(|earlier| &earlier.output == name) {
            return Err(format!("output `{name}` has more than one batch"));
        }
        let json = rows_json(info, batch).map_err(|problem| format!("output `{name}`: {problem}"))?;
        let keys = batch.keys.as_ref();
        rows.extend(json.into_iter().zip(&batch.inputs).enumerate().map(|(row, (json, &input))| {
            RenderedRow { output: name.clone(), input, key: keys.map(|keys| blob(keys, row).to_vec()), json }
        }));
    }
    rows.sort_by_key(|row| row.input);
    Ok(rows)
}

/// Appends `text` as a JSON string.
fn write_json_string(text: &str, out: &mut String) {
    // A str always serializes; the fallback is never taken.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::OutputRows;
    use crate::schema::{Column, ColumnType};

    const COLUMNS: &[Column] = &[
        Column::required("name", ColumnType::Text),
        Column::nullable("count", ColumnType::Int32),
        Column::nullable("total", ColumnType::Int64),
        Column::nullable("ratio", ColumnType::Float64),
        Column::nullable("on", ColumnType::Boolean),
        Column::nullable("at", ColumnType::TimestampMs),
        Column::nullable("tags", ColumnType::TextList),
        Column::nullable("extra", ColumnType::Json),
    ];

    fn info() -> OutputInfo {
        OutputInfo::new("out", COLUMNS)
    }

    #[test]
    fn rows_render_in_column_order_without_nulls() {
        let mut rows = OutputRows::new("out", COLUMNS);
        rows.row(0, None)
            .text("a \"q\"\n")
            .int32(-3)
            .int64(1 << 40)
            .float64(1.5)
            .boolean(true)
            .timestamp_ms(1_513_299_569_000)
            .text_list(&["x", "y"])
            .json(&serde_json::json!({"k": [1, null]}))
            .finish()
            .unwrap();
        rows.row(1, None)
            .text("b")
            .null()
            .null()
            .float64(f64::NAN)
            .null()
            .null()
            .text_list::<&str>(&[])
            .null()
            .finish()
            .unwrap();
        let rendered = rows_json(&info(), &rows.finish()).unwrap();
        assert_eq!(
            rendered,
            [
                r#"{"name":"a \"q\"\n","count":-3,"total":1099511627776,"ratio":1.5,"on":true,"at":1513299569000,"tags":["x","y"],"extra":{"k":[1,null]}}"#,
                r#"{"name":"b","tags":[]}"#,
            ]
        );
    }

    #[test]
    fn result_rows_come_in_input_order_with_their_keys() {
        const ONE: &[Column] = &[Column::required("id", ColumnType::Text)];
        let declared = [OutputInfo::new("a", ONE), OutputInfo::new("b", ONE)];
        let mut a = OutputRows::new("a", ONE);
        let mut b = OutputRows::new("b", ONE);
        a.row(0, Some(b"k0")).text("0a").finish().unwrap();
        a.row(2, Some(b"k2")).text("2a").finish().unwrap();
        b.row(1, None).text("1b").finish().unwrap();
        b.row(2, None).text("2b").finish().unwrap();
        let result = BatchResult { outputs: vec![a.finish(), b.finish()], failures: Vec::new() };
        let rows = result_rows(&declared, &result).unwrap();
        let summary: Vec<_> = rows
            .iter()
            .map(|row| (row.output.as_str(), row.input, row.key.as_deref(), row.json.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("a", 0, Some(&b"k0"[..]), r#"{"id":"0a"}"#),
                ("b", 1, None, r#"{"id":"1b"}"#),
                ("a", 2, Some(&b"k2"[..]), r#"{"id":"2a"}"#),
                ("b", 2, None, r#"{"id":"2b"}"#),
            ]
        );
        assert_eq!(rows[0].value(), serde_json::json!({"id": "0a"}));
        assert_eq!(result_rows(&declared[..1], &result), Err("output `b` is not declared".to_owned()));
    }

    #[test]
    fn a_batch_that_does_not_match_its_columns_is_refused_naming_the_column() {
        let mut rows = OutputRows::new("out", COLUMNS);
        rows.row(0, None).text("a").null().null().null().null().null().null().null().finish().unwrap();
        let good = rows.finish();
        let check = |batch: &OutputBatch| check_batch(&info(), batch);
        assert_eq!(check(&good), Ok(1));

        let mut batch = good.clone();
        batch.columns[1].values = ColumnValues::Int64(vec![0]);
        assert_eq!(check(&batch), Err("column `count`: expected int32 values, found int64".to_owned()));

        let mut batch = good.clone();
        batch.columns[0].nulls = vec![0];
        assert_eq!(
            check(&batch),
            Err("column `name`: row 0 is null in a column that is not nullable".to_owned())
        );

        let mut batch = good.clone();
        batch.columns[0].values = ColumnValues::Text(Blobs { bytes: vec![0xff], offsets: vec![0, 1] });
        assert!(check(&batch).unwrap_err().starts_with("column `name`: row 0 is not UTF-8"));

        let mut batch = good.clone();
        batch.columns[7] = ColumnData {
            values: ColumnValues::Json(Blobs { bytes: b"{".to_vec(), offsets: vec![0, 1] }),
            nulls: Vec::new(),
        };
        assert!(check(&batch).unwrap_err().starts_with("column `extra`: row 0 is not valid JSON"));

        let mut batch = good.clone();
        batch.inputs.push(1);
        assert_eq!(check(&batch), Err("column `name`: 1 values for 2 rows".to_owned()));

        let mut batch = good;
        batch.columns.pop();
        assert_eq!(check(&batch), Err("7 columns, but output `out` declares 8".to_owned()));
    }
}
