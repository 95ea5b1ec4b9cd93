//! One value bound for one column: the column's PostgreSQL type decides how a plugin's typed
//! value becomes a cell, so the host needs no knowledge of what the fields mean.

use std::borrow::Cow;
use std::error::Error;

use bytes::BytesMut;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::IgnoredAny;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::plugin::rows::{Value, write_json_value};

/// The column types the sink can fill, grouped by how a typed value becomes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// `text`, `varchar`, `char`: a text as it is; other values as their JSON text.
    Text,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    /// `json` or `jsonb`: the JSON value as it is.
    Json,
    /// `timestamp`: epoch milliseconds or an RFC 3339 text, stored as UTC wall time.
    Timestamp,
    /// `timestamptz`: epoch milliseconds or an RFC 3339 text.
    TimestampTz,
}

/// Every type name [`CellKind::of`] accepts, for error messages.
pub const SUPPORTED_TYPES: &str = "text, varchar, char, smallint, integer, bigint, real, double precision, boolean, json, jsonb, timestamp, timestamptz";

impl CellKind {
    /// The kind for a column of type `ty`, or `None` when the sink cannot fill it.
    pub fn of(ty: &Type) -> Option<Self> {
        Some(match *ty {
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => CellKind::Text,
            Type::INT2 => CellKind::Int2,
            Type::INT4 => CellKind::Int4,
            Type::INT8 => CellKind::Int8,
            Type::FLOAT4 => CellKind::Float4,
            Type::FLOAT8 => CellKind::Float8,
            Type::BOOL => CellKind::Bool,
            Type::JSON | Type::JSONB => CellKind::Json,
            Type::TIMESTAMP => CellKind::Timestamp,
            Type::TIMESTAMPTZ => CellKind::TimestampTz,
            _ => return None,
        })
    }

    /// Turns a plugin's typed `value` into this kind of cell. Numbers widen (an int32 into a
    /// `bigint`, any integer into a `double precision`) and narrow only when they fit; a text
    /// column takes any value, non-text values as their JSON text (as the original system kept
    /// them); a timestamp column takes epoch milliseconds or an RFC 3339 text.
    ///
    /// # Errors
    /// A short reason when the value does not fit: a number out of the column's range, a text
    /// for a number or boolean column, an unreadable time, or text that is not JSON for a
    /// `json`/`jsonb` column (which the server would refuse, failing the whole load).
    pub fn cell(self, value: Value<'_>) -> Result<Cell<'_>, String> {
        let found = value.kind();
        let misfit = || format!("expected a value for a {} column, found {found}", self.describe());
        Ok(match (self, value) {
            (_, Value::Null) => Cell::Null,
            (CellKind::Text, Value::Text(text) | Value::Json(text)) => Cell::Text(Cow::Borrowed(text)),
            (CellKind::Text, other) => Cell::Text(Cow::Owned(json_text(other))),
            (CellKind::Int2, value) => Cell::Int2(integer(value).ok_or_else(misfit).and_then(narrow)?),
            (CellKind::Int4, value) => Cell::Int4(integer(value).ok_or_else(misfit).and_then(narrow)?),
            (CellKind::Int8, value) => Cell::Int8(integer(value).ok_or_else(misfit)?),
            // Narrowing to f32 is what a `real` column means.
            #[allow(clippy::cast_possible_truncation)]
            (CellKind::Float4, value) => Cell::Float4(float(value).ok_or_else(misfit)? as f32),
            (CellKind::Float8, value) => Cell::Float8(float(value).ok_or_else(misfit)?),
            (CellKind::Bool, Value::Boolean(flag)) => Cell::Bool(flag),
            (CellKind::Json, Value::Json(text)) => {
                serde_json::from_str::<IgnoredAny>(text)
                    .map_err(|error| format!("not JSON text: {error}"))?;
                Cell::Json(Cow::Borrowed(text.as_bytes()))
            }
            (CellKind::Json, other) => Cell::Json(Cow::Owned(json_text(other).into_bytes())),
            (CellKind::Timestamp, value) => Cell::Timestamp(instant(value).ok_or_else(misfit)??.naive_utc()),
            (CellKind::TimestampTz, value) => Cell::TimestampTz(instant(value).ok_or_else(misfit)??),
            (CellKind::Bool, _) => return Err(misfit()),
        })
    }

    fn describe(self) -> &'static str {
        match self {
            CellKind::Text => "text",
            CellKind::Int2 => "smallint",
            CellKind::Int4 => "integer",
            CellKind::Int8 => "bigint",
            CellKind::Float4 => "real",
            CellKind::Float8 => "double precision",
            CellKind::Bool => "boolean",
            CellKind::Json => "json",
            CellKind::Timestamp => "timestamp",
            CellKind::TimestampTz => "timestamptz",
        }
    }
}

fn json_text(value: Value<'_>) -> String {
    let mut text = String::new();
    write_json_value(value, &mut text);
    text
}

fn integer(value: Value<'_>) -> Option<i64> {
    match value {
        Value::Int32(number) => Some(i64::from(number)),
        Value::Int64(number) | Value::TimestampMs(number) => Some(number),
        _ => None,
    }
}

fn narrow<T: TryFrom<i64>>(wide: i64) -> Result<T, String> {
    T::try_from(wide).map_err(|_| format!("{wide} is out of the column's range"))
}

// Integers past 2^53 lose precision as doubles, as they would in the original's Spark load.
#[allow(clippy::cast_precision_loss)]
fn float(value: Value<'_>) -> Option<f64> {
    match value {
        Value::Float64(number) => Some(number),
        Value::Int32(number) => Some(f64::from(number)),
        Value::Int64(number) => Some(number as f64),
        _ => None,
    }
}

/// A time from epoch milliseconds or RFC 3339 text; `None` for any other value.
fn instant(value: Value<'_>) -> Option<Result<DateTime<Utc>, String>> {
    Some(match value {
        Value::TimestampMs(millis) | Value::Int64(millis) => {
            DateTime::from_timestamp_millis(millis).ok_or_else(|| format!("{millis} ms is out of range"))
        }
        Value::Text(text) => DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|error| format!("`{text}` is not an RFC 3339 time: {error}")),
        _ => return None,
    })
}

/// A value ready for binary `COPY`, borrowing the plugin's text where it can: a load writes
/// millions of cells, and copying each text only to encode it was a tenth of the job's time.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Text(Cow<'a, str>),
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Float4(f32),
    Float8(f64),
    Bool(bool),
    /// JSON text, written as `json` or `jsonb` by the column's type.
    Json(Cow<'a, [u8]>),
    Timestamp(NaiveDateTime),
    TimestampTz(DateTime<Utc>),
}

/// The binary format version byte that precedes a `jsonb` value.
const JSONB_VERSION: u8 = 1;

impl ToSql for Cell<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Text(text) => text.as_ref().to_sql(ty, out),
            Cell::Int2(value) => value.to_sql(ty, out),
            Cell::Int4(value) => value.to_sql(ty, out),
            Cell::Int8(value) => value.to_sql(ty, out),
            Cell::Float4(value) => value.to_sql(ty, out),
            Cell::Float8(value) => value.to_sql(ty, out),
            Cell::Bool(value) => value.to_sql(ty, out),
            Cell::Json(text) => {
                if *ty == Type::JSONB {
                    out.extend_from_slice(&[JSONB_VERSION]);
                }
                out.extend_from_slice(text);
                Ok(IsNull::No)
            }
            Cell::Timestamp(value) => value.to_sql(ty, out),
            Cell::TimestampTz(value) => value.to_sql(ty, out),
        }
    }

    /// Any column [`CellKind::of`] knows; which variant goes to which column is settled when
    /// the table is planned.
    fn accepts(ty: &Type) -> bool {
        CellKind::of(ty).is_some()
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_columns_take_texts_as_they_are_and_other_values_as_json_text() {
        assert_eq!(CellKind::Text.cell(Value::Text("a\"b")), Ok(Cell::Text("a\"b".into())));
        assert_eq!(CellKind::Text.cell(Value::Json("[1, 2]")), Ok(Cell::Text("[1, 2]".into())));
        assert_eq!(CellKind::Text.cell(Value::Int64(7)), Ok(Cell::Text("7".into())));
        assert_eq!(CellKind::Text.cell(Value::Null), Ok(Cell::Null));
    }

    #[test]
    fn integers_widen_and_narrow_only_when_they_fit() {
        assert_eq!(CellKind::Int4.cell(Value::Int64(1_644_527_391)), Ok(Cell::Int4(1_644_527_391)));
        assert!(
            CellKind::Int4
                .cell(Value::Int64(2_147_483_648))
                .unwrap_err()
                .contains("out of the column's range")
        );
        assert_eq!(CellKind::Int8.cell(Value::Int32(-3)), Ok(Cell::Int8(-3)));
        assert!(CellKind::Int8.cell(Value::Float64(1.5)).unwrap_err().contains("found float64"));
        assert!(CellKind::Int2.cell(Value::Text("7")).is_err());
        assert_eq!(CellKind::Float8.cell(Value::Int32(2)), Ok(Cell::Float8(2.0)));
    }

    #[test]
    fn booleans_and_json_are_taken_as_written_and_bad_json_is_refused() {
        assert_eq!(CellKind::Bool.cell(Value::Boolean(false)), Ok(Cell::Bool(false)));
        assert!(CellKind::Bool.cell(Value::Int32(0)).is_err());
        assert_eq!(
            CellKind::Json.cell(Value::Json(r#"{"a":1}"#)),
            Ok(Cell::Json(br#"{"a":1}"#.as_slice().into()))
        );
        assert_eq!(CellKind::Json.cell(Value::Text("x")), Ok(Cell::Json(br#""x""#.as_slice().into())));
        assert!(CellKind::Json.cell(Value::Json("{")).unwrap_err().contains("not JSON"));
    }

    #[test]
    fn timestamps_read_epoch_milliseconds_or_rfc3339() {
        let expected = DateTime::from_timestamp(1_644_527_391, 0).expect("time");
        assert_eq!(
            CellKind::TimestampTz.cell(Value::Text("2022-02-10T21:09:51Z")),
            Ok(Cell::TimestampTz(expected))
        );
        assert_eq!(
            CellKind::Timestamp.cell(Value::TimestampMs(1_644_527_391_000)),
            Ok(Cell::Timestamp(expected.naive_utc()))
        );
        assert!(CellKind::Timestamp.cell(Value::Text("yesterday")).is_err());
        assert!(CellKind::Timestamp.cell(Value::Boolean(true)).is_err());
    }

    #[test]
    fn jsonb_gets_its_version_byte() {
        let mut out = BytesMut::new();
        Cell::Json(b"{}".as_slice().into()).to_sql(&Type::JSONB, &mut out).expect("encode");
        assert_eq!(&out[..], b"\x01{}");
    }
}
