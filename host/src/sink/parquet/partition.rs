//! Hive partitions: which `col=value/` directory each row belongs in.
//!
//! The sink's `partition_by` setting names the columns; their values become the directory path
//! (`day=2024-05-01/kind=open/`) and are left out of the files themselves, as Hive and Athena
//! expect: the engine reads a partition column's value from the path, and a table whose files
//! also held it would declare the column twice.
//!
//! Values are escaped exactly as Hive's `FileUtils.escapePathName` does, so a table created by
//! Athena or Spark over the same prefix finds the same directories, and a value holding `/` or
//! `=` cannot make up directories of its own.

use std::collections::HashMap;
use std::fmt::Write as _;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Int32Type, Int64Type, Schema, SchemaRef};
use arrow::error::ArrowError;

/// The directory Hive uses for a null or empty partition value.
pub const DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The column types a partition column may have: their values print as plain text.
pub const PARTITION_TYPES: &str = "string, int32, int64, bool";

/// Why a partitioning cannot be set up or applied.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("partition_by names `{column}`, which the output does not have; its columns are {available}")]
    UnknownColumn { column: String, available: String },
    #[error("partition_by names `{column}` more than once")]
    DuplicateColumn { column: String },
    #[error(
        "partition column `{column}` has type {data_type}; partition columns must be one of {PARTITION_TYPES}"
    )]
    UnsupportedType { column: String, data_type: DataType },
    #[error("partition_by names every column of the output, so the files would hold no data")]
    NoDataColumns,
    #[error("a batch does not have the schema this partitioning was built for")]
    SchemaMismatch,
    #[error("cannot split the batch by partition: {0}")]
    Arrow(#[source] ArrowError),
}

/// The rows of one batch that share a partition, without the partition columns.
#[derive(Debug, Clone)]
pub struct PartitionedBatch {
    /// The partition's directory, `col=value/` per partition column (empty when unpartitioned).
    pub path: String,
    pub batch: RecordBatch,
}

/// Splits batches of one schema by the values of its partition columns.
#[derive(Debug, Clone)]
pub struct Partitioner {
    schema: SchemaRef,
    /// Position in `schema` and escaped name of each partition column, in `partition_by` order.
    partition_columns: Vec<(usize, String)>,
    /// Positions in `schema` of the columns the files hold.
    data_columns: Vec<usize>,
    data_schema: SchemaRef,
}

impl Partitioner {
    /// A partitioner for batches of `schema` by the columns `partition_by` names, in that order.
    ///
    /// # Errors
    ///
    /// [`PartitionError`] when a name is not a column of `schema`, appears twice, names a column
    /// whose type is not one of [`PARTITION_TYPES`], or every column would be a partition column.
    pub fn new(schema: SchemaRef, partition_by: &[String]) -> Result<Self, PartitionError> {
        let mut partition_columns = Vec::with_capacity(partition_by.len());
        for column in partition_by {
            let Ok(position) = schema.index_of(column) else {
                return Err(PartitionError::UnknownColumn {
                    column: column.clone(),
                    available: column_list(&schema),
                });
            };
            if partition_columns.iter().any(|(existing, _)| *existing == position) {
                return Err(PartitionError::DuplicateColumn { column: column.clone() });
            }
            let data_type = schema.field(position).data_type();
            if !matches!(data_type, DataType::Utf8 | DataType::Int32 | DataType::Int64 | DataType::Boolean) {
                return Err(PartitionError::UnsupportedType {
                    column: column.clone(),
                    data_type: data_type.clone(),
                });
            }
            partition_columns.push((position, escape_path_name(column)));
        }
        let data_columns: Vec<usize> = (0..schema.fields().len())
            .filter(|position| !partition_columns.iter().any(|(partition, _)| partition == position))
            .collect();
        if data_columns.is_empty() {
            return Err(PartitionError::NoDataColumns);
        }
        let data_schema = schema.project(&data_columns).map_err(PartitionError::Arrow)?;
        Ok(Partitioner { schema, partition_columns, data_columns, data_schema: data_schema.into() })
    }

    /// The schema of the files: the batch schema without the partition columns.
    pub fn data_schema(&self) -> &SchemaRef {
        &self.data_schema
    }

    /// Groups the rows of `batch` by partition, in the order each partition first appears, with
    /// rows in their original order within a group. An unpartitioned sink gets one group with
    /// an empty path; an empty batch gets none.
    ///
    /// # Errors
    ///
    /// [`PartitionError::SchemaMismatch`] when `batch` does not have the schema given to
    /// [`Self::new`]; [`PartitionError::Arrow`] if Arrow cannot gather the rows.
    pub fn split(&self, batch: &RecordBatch) -> Result<Vec<PartitionedBatch>, PartitionError> {
        if batch.schema_ref() != &self.schema {
            return Err(PartitionError::SchemaMismatch);
        }
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let data = batch.project(&self.data_columns).map_err(PartitionError::Arrow)?;

        let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
        let mut group_of_path: HashMap<String, usize> = HashMap::new();
        let mut path = String::new();
        for row in 0..batch.num_rows() {
            path.clear();
            for (position, name) in &self.partition_columns {
                path.push_str(name);
                path.push('=');
                write_partition_value(batch.column(*position).as_ref(), row, &mut path);
                path.push('/');
            }
            let row = u32::try_from(row).map_err(|_| {
                PartitionError::Arrow(ArrowError::ComputeError("more rows than u32".to_owned()))
            })?;
            match group_of_path.get(&path) {
                Some(&group) => groups[group].1.push(row),
                None => {
                    group_of_path.insert(path.clone(), groups.len());
                    groups.push((path.clone(), vec![row]));
                }
            }
        }

        if let [(path, _)] = groups.as_slice() {
            return Ok(vec![PartitionedBatch { path: path.clone(), batch: data }]);
        }
        groups
            .into_iter()
            .map(|(path, rows)| {
                let batch =
                    take_record_batch(&data, &UInt32Array::from(rows)).map_err(PartitionError::Arrow)?;
                Ok(PartitionedBatch { path, batch })
            })
            .collect()
    }
}

/// Appends the escaped text of `column[row]`, or [`DEFAULT_PARTITION`] for null or empty.
fn write_partition_value(column: &dyn Array, row: usize, path: &mut String) {
    if column.is_null(row) {
        path.push_str(DEFAULT_PARTITION);
        return;
    }
    match column.data_type() {
        DataType::Utf8 => {
            let value = column.as_string::<i32>().value(row);
            if value.is_empty() {
                path.push_str(DEFAULT_PARTITION);
            } else {
                escape_into(value, path);
            }
        }
        DataType::Int32 => push_display(column.as_primitive::<Int32Type>().value(row), path),
        DataType::Int64 => push_display(column.as_primitive::<Int64Type>().value(row), path),
        DataType::Boolean => push_display(column.as_boolean().value(row), path),
        // `Partitioner::new` admits no other type.
        _ => path.push_str(DEFAULT_PARTITION),
    }
}

/// Numbers and booleans need no escaping: their text has no character Hive escapes.
fn push_display(value: impl std::fmt::Display, path: &mut String) {
    // Writing to a String cannot fail.
    let _ = write!(path, "{value}");
}

/// A column name or value escaped for a Hive partition path: `%XX` (upper-case hex) for ASCII
/// control characters, DEL and `"#%'*/:=?\{[]^`; everything else, non-ASCII included, as is.
pub fn escape_path_name(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    escape_into(text, &mut escaped);
    escaped
}

fn escape_into(text: &str, out: &mut String) {
    for character in text.chars() {
        if needs_escaping(character) {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{:02X}", u32::from(character));
        } else {
            out.push(character);
        }
    }
}

fn needs_escaping(character: char) -> bool {
    character.is_ascii_control()
        || matches!(
            character,
            '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^'
        )
}

fn column_list(schema: &Schema) -> String {
    let names: Vec<&str> = schema.fields().iter().map(|field| field.name().as_str()).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BooleanArray, Int32Array, StringArray};
    use arrow::datatypes::Field;

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("dt", DataType::Utf8, true),
            Field::new("event", DataType::Utf8, false),
            Field::new("n", DataType::Int32, false),
            Field::new("flag", DataType::Boolean, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("2024-05-01"),
                    Some("2024-05-01"),
                    None,
                    Some("2024-05-02"),
                    Some("2024-05-01"),
                ])),
                Arc::new(StringArray::from(vec!["open", "click", "open", "open", "open"])),
                Arc::new(Int32Array::from(vec![0, 1, 2, 3, 4])),
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false), None, Some(true)])),
            ],
        )
        .unwrap()
    }

    fn names(by: &[&str]) -> Vec<String> {
        by.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn hive_escapes_separators_percent_and_control_characters() {
        assert_eq!(escape_path_name("2024-05-01"), "2024-05-01");
        assert_eq!(escape_path_name("a/b=c%d"), "a%2Fb%3Dc%25d");
        assert_eq!(escape_path_name("tab\there\nnl\u{7f}"), "tab%09here%0Anl%7F");
        assert_eq!(escape_path_name(r##""#%'*:?\{[]^"##), "%22%23%25%27%2A%3A%3F%5C%7B%5B%5D%5E");
        // Hive leaves spaces, commas, braces it does not list and non-ASCII text alone.
        assert_eq!(escape_path_name("a b,c}é漢"), "a b,c}é漢");
    }

    #[test]
    fn rows_are_grouped_by_partition_in_first_seen_order() {
        let partitioner = Partitioner::new(batch().schema(), &names(&["dt", "event"])).unwrap();
        let groups = partitioner.split(&batch()).unwrap();
        let paths: Vec<&str> = groups.iter().map(|group| group.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "dt=2024-05-01/event=open/",
                "dt=2024-05-01/event=click/",
                "dt=__HIVE_DEFAULT_PARTITION__/event=open/",
                "dt=2024-05-02/event=open/",
            ]
        );
        let rows: Vec<Vec<i32>> = groups
            .iter()
            .map(|group| group.batch.column(0).as_primitive::<Int32Type>().values().to_vec())
            .collect();
        assert_eq!(rows, [vec![0, 4], vec![1], vec![2], vec![3]]);
    }

    #[test]
    fn partition_columns_are_left_out_of_the_files() {
        let partitioner = Partitioner::new(batch().schema(), &names(&["dt", "event"])).unwrap();
        let file_columns: Vec<&str> =
            partitioner.data_schema().fields().iter().map(|field| field.name().as_str()).collect();
        assert_eq!(file_columns, ["n", "flag"]);
        for group in partitioner.split(&batch()).unwrap() {
            assert_eq!(group.batch.schema_ref(), partitioner.data_schema());
        }
    }

    #[test]
    fn empty_nulls_and_non_string_values_make_paths_too() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("kind", DataType::Utf8, true),
            Field::new("n", DataType::Int32, false),
            Field::new("flag", DataType::Boolean, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["", "a/b"])),
                Arc::new(Int32Array::from(vec![-7, 7])),
                Arc::new(BooleanArray::from(vec![None, Some(false)])),
            ],
        )
        .unwrap();
        let partitioner = Partitioner::new(schema, &names(&["kind", "n"])).unwrap();
        let paths: Vec<String> =
            partitioner.split(&batch).unwrap().into_iter().map(|group| group.path).collect();
        assert_eq!(paths, ["kind=__HIVE_DEFAULT_PARTITION__/n=-7/", "kind=a%2Fb/n=7/"]);

        let by_flag = Partitioner::new(batch.schema(), &names(&["flag"])).unwrap();
        let paths: Vec<String> = by_flag.split(&batch).unwrap().into_iter().map(|group| group.path).collect();
        assert_eq!(paths, ["flag=__HIVE_DEFAULT_PARTITION__/", "flag=false/"]);
    }

    #[test]
    fn an_unpartitioned_sink_gets_one_group_with_an_empty_path() {
        let partitioner = Partitioner::new(batch().schema(), &[]).unwrap();
        let groups = partitioner.split(&batch()).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].path, "");
        assert_eq!(groups[0].batch, batch());
        assert!(partitioner.split(&batch().slice(0, 0)).unwrap().is_empty());
    }

    #[test]
    fn bad_partition_settings_are_refused_with_the_column_named() {
        let schema = batch().schema();
        let unknown = Partitioner::new(schema.clone(), &names(&["day"])).unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "partition_by names `day`, which the output does not have; its columns are dt, event, n, flag"
        );
        assert!(matches!(
            Partitioner::new(schema.clone(), &names(&["dt", "dt"])),
            Err(PartitionError::DuplicateColumn { column }) if column == "dt"
        ));
        assert!(matches!(
            Partitioner::new(schema.clone(), &names(&["dt", "event", "n", "flag"])),
            Err(PartitionError::NoDataColumns)
        ));
        let listed = Arc::new(Schema::new(vec![
            Field::new("tags", DataType::new_list(DataType::Utf8, true), true),
            Field::new("n", DataType::Int32, false),
        ]));
        assert!(matches!(
            Partitioner::new(listed, &names(&["tags"])),
            Err(PartitionError::UnsupportedType { column, .. }) if column == "tags"
        ));
    }

    #[test]
    fn a_batch_of_another_schema_is_refused() {
        let partitioner = Partitioner::new(batch().schema(), &names(&["dt"])).unwrap();
        let other = batch().project(&[0, 1, 2]).unwrap();
        assert!(matches!(partitioner.split(&other), Err(PartitionError::SchemaMismatch)));
    }
}
