//! One value bound for one column: the column's PostgreSQL type decides how a plugin's JSON
//! value is read, so the host needs no knowledge of what the fields mean.

use std::error::Error;

use bytes::BytesMut;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::value::RawValue;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// The column types the sink can fill, grouped by how a JSON value becomes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// `text`, `varchar`, `char`: a JSON string's content; other JSON values as their text.
    Text,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    /// `json` or `jsonb`: the JSON value as it is.
    Json,
    /// `timestamp`: an RFC 3339 string or epoch milliseconds, stored as UTC wall time.
    Timestamp,
    /// `timestamptz`: an RFC 3339 string or epoch milliseconds.
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

    /// Reads `raw` (a field's JSON text, `None` when the field is absent) as this kind.
    ///
    /// # Errors
    /// A short reason when the value does not fit: a non-integer or out-of-range number for
    /// an integer column, a non-boolean for `boolean`, an unreadable time for a timestamp.
    pub fn read(self, raw: Option<&RawValue>) -> Result<Cell, String> {
        let Some(raw) = raw else { return Ok(Cell::Null) };
        let text = raw.get();
        if text == "null" {
            return Ok(Cell::Null);
        }
        Ok(match self {
            CellKind::Text if text.starts_with('"') => Cell::Text(unquote(raw)?),
            CellKind::Text => Cell::Text(text.to_owned()),
            CellKind::Int2 => Cell::Int2(integer(text)?),
            CellKind::Int4 => Cell::Int4(integer(text)?),
            CellKind::Int8 => Cell::Int8(integer(text)?),
            // Narrowing to f32 is what a `real` column means.
            #[allow(clippy::cast_possible_truncation)]
            CellKind::Float4 => Cell::Float4(float(text)? as f32),
            CellKind::Float8 => Cell::Float8(float(text)?),
            CellKind::Bool => match text {
                "true" => Cell::Bool(true),
                "false" => Cell::Bool(false),
                _ => return Err(format!("expected true or false, found {text}")),
            },
            CellKind::Json => Cell::Json(text.as_bytes().to_vec()),
            CellKind::Timestamp => Cell::Timestamp(instant(raw)?.naive_utc()),
            CellKind::TimestampTz => Cell::TimestampTz(instant(raw)?),
        })
    }
}

fn unquote(raw: &RawValue) -> Result<String, String> {
    serde_json::from_str(raw.get()).map_err(|error| format!("not a JSON string: {error}"))
}

fn integer<T: TryFrom<i64>>(text: &str) -> Result<T, String> {
    let wide: i64 = text.parse().map_err(|_| format!("expected an integer, found {text}"))?;
    T::try_from(wide).map_err(|_| format!("{text} is out of the column's range"))
}

fn float(text: &str) -> Result<f64, String> {
    text.parse().map_err(|_| format!("expected a number, found {text}"))
}

fn instant(raw: &RawValue) -> Result<DateTime<Utc>, String> {
    let text = raw.get();
    if text.starts_with('"') {
        let content = unquote(raw)?;
        return DateTime::parse_from_rfc3339(&content)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|error| format!("`{content}` is not an RFC 3339 time: {error}"));
    }
    let millis: i64 =
        text.parse().map_err(|_| format!("expected a time or epoch milliseconds, found {text}"))?;
    DateTime::from_timestamp_millis(millis).ok_or_else(|| format!("{millis} ms is out of range"))
}

/// A value ready for binary `COPY`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Float4(f32),
    Float8(f64),
    Bool(bool),
    /// JSON text, written as `json` or `jsonb` by the column's type.
    Json(Vec<u8>),
    Timestamp(NaiveDateTime),
    TimestampTz(DateTime<Utc>),
}

/// The binary format version byte that precedes a `jsonb` value.
const JSONB_VERSION: u8 = 1;

impl ToSql for Cell {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Text(text) => text.as_str().to_sql(ty, out),
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

    fn read(kind: CellKind, json: &str) -> Result<Cell, String> {
        let raw: Box<RawValue> = serde_json::from_str(json).expect("test JSON");
        kind.read(Some(&raw))
    }

    #[test]
    fn text_columns_take_string_content_and_other_values_as_json_text() {
        assert_eq!(read(CellKind::Text, r#""a\"b""#), Ok(Cell::Text("a\"b".into())));
        assert_eq!(read(CellKind::Text, "[1, 2]"), Ok(Cell::Text("[1, 2]".into())));
        assert_eq!(read(CellKind::Text, "null"), Ok(Cell::Null));
        assert_eq!(CellKind::Text.read(None), Ok(Cell::Null));
    }

    #[test]
    fn integers_must_fit_the_column() {
        assert_eq!(read(CellKind::Int4, "1644527391"), Ok(Cell::Int4(1_644_527_391)));
        assert!(read(CellKind::Int4, "2147483648").unwrap_err().contains("out of the column's range"));
        assert!(read(CellKind::Int8, "1.5").unwrap_err().contains("expected an integer"));
        assert!(read(CellKind::Int2, r#""7""#).is_err());
    }

    #[test]
    fn booleans_and_json_are_taken_as_written() {
        assert_eq!(read(CellKind::Bool, "false"), Ok(Cell::Bool(false)));
        assert!(read(CellKind::Bool, "0").is_err());
        assert_eq!(read(CellKind::Json, r#"{"a":1}"#), Ok(Cell::Json(br#"{"a":1}"#.to_vec())));
    }

    #[test]
    fn timestamps_read_rfc3339_or_epoch_milliseconds() {
        let expected = DateTime::from_timestamp(1_644_527_391, 0).expect("time");
        assert_eq!(read(CellKind::TimestampTz, r#""2022-02-10T21:09:51Z""#), Ok(Cell::TimestampTz(expected)));
        assert_eq!(read(CellKind::Timestamp, "1644527391000"), Ok(Cell::Timestamp(expected.naive_utc())));
        assert!(read(CellKind::Timestamp, r#""yesterday""#).is_err());
    }

    #[test]
    fn jsonb_gets_its_version_byte() {
        let mut out = BytesMut::new();
        Cell::Json(b"{}".to_vec()).to_sql(&Type::JSONB, &mut out).expect("encode");
        assert_eq!(&out[..], b"\x01{}");
    }
}
