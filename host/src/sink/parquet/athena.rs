//! The Athena (Hive DDL) `CREATE EXTERNAL TABLE` statement for a Parquet sink's table.
//!
//! The host prints it for an operator to run once: the columns come from the plugin's output
//! schema, the partition columns from the sink's `partition_by`, so the table always matches
//! what the sink writes. New partitions still have to be registered (`MSCK REPAIR TABLE` or
//! partition projection); that is left to the operator.

use arrow::datatypes::{DataType, Schema};

/// Why no statement can be rendered.
#[derive(Debug, thiserror::Error)]
pub enum AthenaError {
    #[error("column `{column}` has type {data_type}, which has no Athena type here")]
    UnsupportedType { column: String, data_type: DataType },
    #[error("partition_by names `{column}`, which the output does not have")]
    UnknownPartitionColumn { column: String },
    #[error("the table name is empty")]
    EmptyTableName,
}

/// Where the table's files are.
#[derive(Debug, Clone, Copy)]
pub struct TableLocation<'a> {
    pub bucket: &'a str,
    /// The sink's prefix; leading and trailing `/` are ignored.
    pub prefix: &'a str,
}

/// Renders `CREATE EXTERNAL TABLE IF NOT EXISTS` for `table` (`name` or `database.name`) over
/// the files a sink writes: `schema` is the full batch schema (lineage included, if the sink
/// adds it), `partition_by` the sink's partition columns, declared `string` as Hive paths hold
/// text and left out of the column list as they are out of the files.
///
/// # Errors
///
/// [`AthenaError`] when the table name is empty, a partition column is not in `schema`, or a
/// column's type is not one the contract produces.
pub fn create_table_statement(
    table: &str,
    schema: &Schema,
    partition_by: &[String],
    location: TableLocation<'_>,
) -> Result<String, AthenaError> {
    if table.is_empty() {
        return Err(AthenaError::EmptyTableName);
    }
    if let Some(column) = partition_by.iter().find(|column| schema.index_of(column).is_err()) {
        return Err(AthenaError::UnknownPartitionColumn { column: column.clone() });
    }
    let columns = schema
        .fields()
        .iter()
        .filter(|field| !partition_by.contains(field.name()))
        .map(|field| {
            Ok(format!("  {} {}", quote(field.name()), athena_type(field.name(), field.data_type())?))
        })
        .collect::<Result<Vec<_>, AthenaError>>()?;
    let table_name: Vec<String> = table.split('.').map(quote).collect();

    let mut statement = format!("CREATE EXTERNAL TABLE IF NOT EXISTS {} (\n", table_name.join("."));
    statement.push_str(&columns.join(",\n"));
    statement.push_str("\n)\n");
    if !partition_by.is_empty() {
        let partitions: Vec<String> =
            partition_by.iter().map(|column| format!("  {} string", quote(column))).collect();
        statement.push_str("PARTITIONED BY (\n");
        statement.push_str(&partitions.join(",\n"));
        statement.push_str("\n)\n");
    }
    statement.push_str("STORED AS PARQUET\n");
    statement.push_str(&format!("LOCATION '{}'\n", string_literal(&s3_location(location))));
    statement.push_str("TBLPROPERTIES ('parquet.compression'='SNAPPY')");
    Ok(statement)
}

/// `s3://bucket/prefix/`, with exactly one `/` between the parts and at the end.
fn s3_location(location: TableLocation<'_>) -> String {
    let prefix = location.prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("s3://{}/", location.bucket)
    } else {
        format!("s3://{}/{prefix}/", location.bucket)
    }
}

/// The Athena type of a column the contract produces.
fn athena_type(column: &str, data_type: &DataType) -> Result<&'static str, AthenaError> {
    Ok(match data_type {
        DataType::Utf8 => "string",
        DataType::Int32 => "int",
        DataType::Int64 => "bigint",
        DataType::Float64 => "double",
        DataType::Boolean => "boolean",
        DataType::Timestamp(_, _) => "timestamp",
        DataType::List(item) if item.data_type() == &DataType::Utf8 => "array<string>",
        _ => {
            return Err(AthenaError::UnsupportedType {
                column: column.to_owned(),
                data_type: data_type.clone(),
            });
        }
    })
}

/// A backtick-quoted identifier; a backtick inside is doubled, as Hive reads it.
fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The inside of a single-quoted Hive string literal.
fn string_literal(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

#[cfg(test)]
mod tests {
    use super::super::schema::{parse_output_schema, with_lineage};
    use super::*;

    use super::super::test_schema::EVERY_TYPE as SCHEMA;

    fn location() -> TableLocation<'static> {
        TableLocation { bucket: "lake", prefix: "/tables/events/" }
    }

    #[test]
    fn the_statement_lists_columns_partitions_location_and_compression() {
        let schema = with_lineage(&parse_output_schema(SCHEMA).unwrap()).unwrap();
        let partition_by = ["dt".to_owned(), "event".to_owned()];
        let statement = create_table_statement("mail.events", &schema, &partition_by, location()).unwrap();
        assert_eq!(
            statement,
            "CREATE EXTERNAL TABLE IF NOT EXISTS `mail`.`events` (\n\
             \x20 `tls` int,\n\
             \x20 `asm_group_id` bigint,\n\
             \x20 `score` double,\n\
             \x20 `machine_open` boolean,\n\
             \x20 `event_time` timestamp,\n\
             \x20 `categories` array<string>,\n\
             \x20 `custom_args` string,\n\
             \x20 `kafka_topic` string,\n\
             \x20 `kafka_partition` int,\n\
             \x20 `kafka_offset` bigint,\n\
             \x20 `plugin_version` string\n\
             )\n\
             PARTITIONED BY (\n\
             \x20 `dt` string,\n\
             \x20 `event` string\n\
             )\n\
             STORED AS PARQUET\n\
             LOCATION 's3://lake/tables/events/'\n\
             TBLPROPERTIES ('parquet.compression'='SNAPPY')"
        );
    }

    #[test]
    fn an_unpartitioned_table_has_no_partition_clause() {
        let schema = parse_output_schema(SCHEMA).unwrap();
        let statement =
            create_table_statement("events", &schema, &[], TableLocation { bucket: "lake", prefix: "" })
                .unwrap();
        assert!(statement.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS `events` (\n  `dt` string,"));
        assert!(!statement.contains("PARTITIONED BY"));
        assert!(statement.contains("LOCATION 's3://lake/'\n"));
    }

    #[test]
    fn awkward_names_are_quoted() {
        let schema =
            parse_output_schema(r#"{"fields":[{"name":"we`ird","type":"string","nullable":true}]}"#).unwrap();
        let statement =
            create_table_statement("t", &schema, &[], TableLocation { bucket: "lake", prefix: "it's" })
                .unwrap();
        assert!(statement.contains("  `we``ird` string\n"), "{statement}");
        assert!(statement.contains(r"LOCATION 's3://lake/it\'s/'"), "{statement}");
    }

    #[test]
    fn unknown_partitions_types_and_names_are_refused() {
        let schema = parse_output_schema(SCHEMA).unwrap();
        assert!(matches!(
            create_table_statement("t", &schema, &["day".to_owned()], location()),
            Err(AthenaError::UnknownPartitionColumn { column }) if column == "day"
        ));
        assert!(matches!(
            create_table_statement("", &schema, &[], location()),
            Err(AthenaError::EmptyTableName)
        ));
        let other = Schema::new(vec![arrow::datatypes::Field::new("d", DataType::Date32, true)]);
        assert!(matches!(
            create_table_statement("t", &other, &[], location()),
            Err(AthenaError::UnsupportedType { column, .. }) if column == "d"
        ));
    }
}
