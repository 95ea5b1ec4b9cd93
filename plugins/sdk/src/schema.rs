//! Output columns: what a plugin declares for each of its outputs in `info()`.
//!
//! The contract carries an output's columns as WIT records (`output-info.columns` in
//! `wit/transform.wit`). A plugin declares an output's row type and its columns at once with
//! [`row_type!`](crate::row_type): each field names its column, and the struct gets the
//! `COLUMNS` it declares the output with ([`OutputInfo::new`]) and writes its rows through
//! ([`crate::rows::OutputRows`]), so the declaration and the rows cannot drift apart. A `const`
//! slice of [`Column`] next to a `Serialize` struct does the same by hand.

use crate::OutputInfo;
use crate::bindings::sluice::transform::types as wit;

/// The type of a column, one of the contract's `column-type`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// UTF-8 text.
    Text,
    Int32,
    Int64,
    Float64,
    Boolean,
    /// Milliseconds since the Unix epoch, for engines that want a real timestamp column.
    TimestampMs,
    /// A list of UTF-8 texts.
    TextList,
    /// Any JSON value, kept as its text.
    Json,
}

impl ColumnType {
    /// The contract's name for the type, as error messages say it (`timestamp-ms`).
    pub const fn name(self) -> &'static str {
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
}

impl From<ColumnType> for wit::ColumnType {
    fn from(column_type: ColumnType) -> Self {
        match column_type {
            ColumnType::Text => wit::ColumnType::Text,
            ColumnType::Int32 => wit::ColumnType::Int32,
            ColumnType::Int64 => wit::ColumnType::Int64,
            ColumnType::Float64 => wit::ColumnType::Float64,
            ColumnType::Boolean => wit::ColumnType::Boolean,
            ColumnType::TimestampMs => wit::ColumnType::TimestampMs,
            ColumnType::TextList => wit::ColumnType::TextList,
            ColumnType::Json => wit::ColumnType::Json,
        }
    }
}

impl From<wit::ColumnType> for ColumnType {
    fn from(column_type: wit::ColumnType) -> Self {
        match column_type {
            wit::ColumnType::Text => ColumnType::Text,
            wit::ColumnType::Int32 => ColumnType::Int32,
            wit::ColumnType::Int64 => ColumnType::Int64,
            wit::ColumnType::Float64 => ColumnType::Float64,
            wit::ColumnType::Boolean => ColumnType::Boolean,
            wit::ColumnType::TimestampMs => ColumnType::TimestampMs,
            wit::ColumnType::TextList => ColumnType::TextList,
            wit::ColumnType::Json => ColumnType::Json,
        }
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// One column of an output, as declared to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub column_type: ColumnType,
    /// Whether a row may be null in this column.
    pub nullable: bool,
}

impl Column {
    /// A column every row fills.
    pub const fn required(name: &'static str, column_type: ColumnType) -> Self {
        Column { name, column_type, nullable: false }
    }

    /// A column a row may leave null.
    pub const fn nullable(name: &'static str, column_type: ColumnType) -> Self {
        Column { name, column_type, nullable: true }
    }
}

impl From<&Column> for wit::Column {
    fn from(column: &Column) -> Self {
        wit::Column {
            name: column.name.to_owned(),
            type_: column.column_type.into(),
            nullable: column.nullable,
        }
    }
}

impl OutputInfo {
    /// The output `name`, whose rows have `columns` in that order.
    pub fn new(name: &str, columns: &[Column]) -> Self {
        OutputInfo { name: name.to_owned(), columns: columns.iter().map(wit::Column::from).collect() }
    }
}

/// Declares a row type and its columns at once, so the two cannot disagree: each field names
/// its column and type (`nullable` when it may be null, as an `Option` field), and the struct
/// gets `COLUMNS`, in field order, and a `Serialize` that writes each field under its column's
/// name, as [`OutputRows::push`](crate::rows::OutputRows::push) reads rows.
///
/// ```
/// sluice_plugin_sdk::row_type! {
///     /// A `users` row.
///     #[derive(Debug)]
///     pub struct UserRow<'a> {
///         #[column("user_id", Text)]
///         pub user_id: &'a str,
///         /// Null when the record has none.
///         #[column("name", Text, nullable)]
///         pub name: Option<&'a str>,
///         #[column("visits", Int64)]
///         pub visits: i64,
///     }
/// }
///
/// let names: Vec<&str> = UserRow::COLUMNS.iter().map(|column| column.name).collect();
/// assert_eq!(names, ["user_id", "name", "visits"]);
/// assert!(UserRow::COLUMNS[1].nullable);
/// ```
#[macro_export]
macro_rules! row_type {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident $(<$lifetime:lifetime>)? {
            $(
                $(#[doc = $doc:literal])*
                #[column($column:literal, $column_type:ident $(, $nullable:ident)?)]
                $field_vis:vis $field:ident : $field_type:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name $(<$lifetime>)? {
            $(
                $(#[doc = $doc])*
                $field_vis $field: $field_type,
            )*
        }

        impl $(<$lifetime>)? $name $(<$lifetime>)? {
            /// The row's columns, in field order.
            pub const COLUMNS: &'static [$crate::schema::Column] = &[
                $($crate::schema::Column {
                    name: $column,
                    column_type: $crate::schema::ColumnType::$column_type,
                    nullable: $crate::row_type!(@nullable $($nullable)?),
                }),*
            ];
        }

        impl $(<$lifetime>)? $crate::__private::serde::Serialize for $name $(<$lifetime>)? {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                use $crate::__private::serde::ser::SerializeStruct;
                let mut row = serializer.serialize_struct(stringify!($name), Self::COLUMNS.len())?;
                $(row.serialize_field($column, &self.$field)?;)*
                row.end()
            }
        }
    };
    (@nullable nullable) => {
        true
    };
    (@nullable) => {
        false
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ColumnType; 8] = [
        ColumnType::Text,
        ColumnType::Int32,
        ColumnType::Int64,
        ColumnType::Float64,
        ColumnType::Boolean,
        ColumnType::TimestampMs,
        ColumnType::TextList,
        ColumnType::Json,
    ];

    #[test]
    fn column_types_map_to_the_contract_and_back() {
        let wit_types: Vec<wit::ColumnType> = ALL.iter().map(|&column_type| column_type.into()).collect();
        assert_eq!(
            wit_types,
            [
                wit::ColumnType::Text,
                wit::ColumnType::Int32,
                wit::ColumnType::Int64,
                wit::ColumnType::Float64,
                wit::ColumnType::Boolean,
                wit::ColumnType::TimestampMs,
                wit::ColumnType::TextList,
                wit::ColumnType::Json,
            ]
        );
        let back: Vec<ColumnType> = wit_types.into_iter().map(ColumnType::from).collect();
        assert_eq!(back, ALL);
    }

    #[test]
    fn column_types_are_named_as_the_contract_names_them() {
        let names: Vec<&str> = ALL.iter().map(|column_type| column_type.name()).collect();
        assert_eq!(
            names,
            ["text", "int32", "int64", "float64", "boolean", "timestamp-ms", "text-list", "json"]
        );
    }

    crate::row_type! {
        struct Declared<'a> {
            #[column("dt", Text)]
            dt: &'a str,
            #[column("pool", Json, nullable)]
            pool: Option<&'a str>,
            #[column("n", Int64)]
            n: i64,
        }
    }

    #[test]
    fn a_row_type_declares_its_columns_in_field_order_and_serializes_under_their_names() {
        let columns: Vec<_> = Declared::COLUMNS
            .iter()
            .map(|column| (column.name, column.column_type, column.nullable))
            .collect();
        assert_eq!(
            columns,
            [
                ("dt", ColumnType::Text, false),
                ("pool", ColumnType::Json, true),
                ("n", ColumnType::Int64, false)
            ]
        );
        let row = Declared { dt: "2024-01-01", pool: None, n: 3 };
        assert_eq!(serde_json::to_string(&row).unwrap(), r#"{"dt":"2024-01-01","pool":null,"n":3}"#);
    }

    #[test]
    fn output_info_carries_the_name_and_the_columns_in_order() {
        let info = OutputInfo::new(
            "events",
            &[Column::required("dt", ColumnType::Text), Column::nullable("pool", ColumnType::Json)],
        );
        assert_eq!(info.name, "events");
        let columns: Vec<_> =
            info.columns.iter().map(|column| (column.name.as_str(), column.type_, column.nullable)).collect();
        assert_eq!(columns, [("dt", wit::ColumnType::Text, false), ("pool", wit::ColumnType::Json, true)]);
    }
}
