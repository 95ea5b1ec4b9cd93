//! The Athena (Hive DDL) `CREATE EXTERNAL TABLE` statement for a Parquet sink's table.
//!
//! The host prints it for an operator to run once: the columns come from the plugin's output
//! schema, the partition columns from the sink's `partition_by`, so the table always matches
//! what the sink writes.
//!
//! The table uses Athena's partition projection, so a partition the sink writes is queryable as
//! soon as its first file is stored, without `MSCK REPAIR TABLE` or a crawler. Athena then
//! computes partition locations instead of reading them from the catalog, and needs to know the
//! values of each partition column. The host cannot know them — a partition value is whatever
//! the plugin put in the column — so the operator says which columns hold days
//! ([`PartitionProjection::Date`]) and which hold one of a known set of values
//! ([`PartitionProjection::Enum`]); any other partition column is `injected`, and queries must
//! then name its values. Rows whose partition value was null or empty sit under
//! `__HIVE_DEFAULT_PARTITION__`, which Athena finds only if an enum lists it.

use std::collections::BTreeMap;

use arrow::datatypes::{DataType, Schema};

use super::partition::escape_path_name;

/// Why no statement can be rendered.
#[derive(Debug, thiserror::Error)]
pub enum AthenaError {
    #[error("column `{column}` has type {data_type}, which has no Athena type here")]
    UnsupportedType { column: String, data_type: DataType },
    #[error("partition_by names `{column}`, which the output does not have")]
    UnknownPartitionColumn { column: String },
    #[error("the table name is empty")]
    EmptyTableName,
    #[error(
        "a projection is given for `{column}`, which is not a partition column; partition_by is [{partition_by}]"
    )]
    ProjectionOfNonPartitionColumn { column: String, partition_by: String },
    #[error(
        "the projection of `{column}` starts at `{start}`; use a day as yyyy-MM-dd (2024-06-01) \
         or a time before now as NOW-<n><unit> with unit YEARS, MONTHS, WEEKS or DAYS (NOW-1YEARS)"
    )]
    BadDateStart { column: String, start: String },
    #[error("the projection of `{column}` lists no values")]
    NoEnumValues { column: String },
    #[error(
        "the projection of `{column}` cannot list `{value}`: each value must be given once, not be \
         empty, and hold no comma and nothing the sink escapes in a directory name (control \
         characters and \"#%'*/:=?\\{{[]^)"
    )]
    BadEnumValue { column: String, value: String },
}

/// How Athena finds the values of one partition column without a catalog of partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionProjection {
    /// Days written as `yyyy-MM-dd`, from `start` (such a day, or `NOW-<n><unit>`) up to today.
    /// Athena looks for no day outside the range, so `start` must be no later than the first
    /// day the table holds.
    Date { start: String },
    /// One of `values`, each written as it is.
    Enum { values: Vec<String> },
}

/// The projected columns of a table, by column name.
pub type PartitionProjections = BTreeMap<String, PartitionProjection>;

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
/// text and left out of the column list as they are out of the files. With `projections`, a
/// partitioned table gets partition projection: those for the columns they name, `injected`
/// for the others; without, its partitions are found as before (`MSCK REPAIR TABLE`), so
/// queries need not name every partition value.
///
/// # Errors
///
/// [`AthenaError`] when the table name is empty, a partition column is not in `schema`, a
/// column's type is not one the contract produces, or a projection names a column that is not
/// a partition column or has a malformed start or values.
pub fn create_table_statement(
    table: &str,
    schema: &Schema,
    partition_by: &[String],
    location: TableLocation<'_>,
    projections: &PartitionProjections,
) -> Result<String, AthenaError> {
    if table.is_empty() {
        return Err(AthenaError::EmptyTableName);
    }
    if let Some(column) = partition_by.iter().find(|column| schema.index_of(column).is_err()) {
        return Err(AthenaError::UnknownPartitionColumn { column: column.clone() });
    }
    if let Some(column) = projections.keys().find(|column| !partition_by.contains(column)) {
        return Err(AthenaError::ProjectionOfNonPartitionColumn {
            column: column.clone(),
            partition_by: partition_by.join(", "),
        });
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
    let projected = !partition_by.is_empty() && !projections.is_empty();
    if !partition_by.is_empty() {
        let partitions: Vec<String> = partition_by
            .iter()
            .map(|column| match projections.get(column) {
                None if projected => format!("  {} string COMMENT '{INJECTED_COMMENT}'", quote(column)),
                _ => format!("  {} string", quote(column)),
            })
            .collect();
        statement.push_str("PARTITIONED BY (\n");
        statement.push_str(&partitions.join(",\n"));
        statement.push_str("\n)\n");
    }
    statement.push_str("STORED AS PARQUET\n");
    statement.push_str(&format!("LOCATION '{}'\n", string_literal(&s3_location(location))));
    let mut properties = vec![("parquet.compression".to_owned(), "SNAPPY".to_owned())];
    if projected {
        properties.extend(projection_properties(partition_by, location, projections)?);
    }
    let properties: Vec<String> = properties
        .iter()
        .map(|(key, value)| format!("  '{}'='{}'", string_literal(key), string_literal(value)))
        .collect();
    statement.push_str("TBLPROPERTIES (\n");
    statement.push_str(&properties.join(",\n"));
    statement.push_str("\n)");
    Ok(statement)
}

/// The comment on a partition column whose values Athena is not told.
const INJECTED_COMMENT: &str = "projected as injected: every query must name its values (= or IN)";

/// The table properties that turn on partition projection for `partition_by`.
fn projection_properties(
    partition_by: &[String],
    location: TableLocation<'_>,
    projections: &PartitionProjections,
) -> Result<Vec<(String, String)>, AthenaError> {
    let mut properties = vec![("projection.enabled".to_owned(), "true".to_owned())];
    let mut template = s3_location(location);
    for column in partition_by {
        let key = |name: &str| format!("projection.{column}.{name}");
        match projections.get(column) {
            Some(PartitionProjection::Date { start }) => {
                if !is_date_start(start) {
                    return Err(AthenaError::BadDateStart { column: column.clone(), start: start.clone() });
                }
                properties.extend([
                    (key("type"), "date".to_owned()),
                    (key("format"), "yyyy-MM-dd".to_owned()),
                    (key("range"), format!("{start},NOW")),
                    (key("interval"), "1".to_owned()),
                    (key("interval.unit"), "DAYS".to_owned()),
                ]);
            }
            Some(PartitionProjection::Enum { values }) => {
                check_enum_values(column, values)?;
                properties.extend([(key("type"), "enum".to_owned()), (key("values"), values.join(","))]);
            }
            None => properties.push((key("type"), "injected".to_owned())),
        }
        // The sink writes `name=value/` with the name escaped as Hive escapes it.
        template.push_str(&format!("{}=${{{column}}}/", escape_path_name(column)));
    }
    properties.push(("storage.location.template".to_owned(), template));
    Ok(properties)
}

/// A day as `yyyy-MM-dd`, or `NOW-<n><unit>` as Athena reads a relative date.
fn is_date_start(start: &str) -> bool {
    if let Some(relative) = start.strip_prefix("NOW-") {
        let digits = relative.chars().take_while(char::is_ascii_digit).count();
        let unit = &relative[digits..];
        return digits > 0 && matches!(unit, "YEARS" | "MONTHS" | "WEEKS" | "DAYS");
    }
    start.len() == 10 && chrono::NaiveDate::parse_from_str(start, "%Y-%m-%d").is_ok()
}

/// Enum values must be listable (no `,`, which separates them), distinct, and written by the
/// sink exactly as given: a value Hive escapes would sit in a directory the template misses.
fn check_enum_values(column: &str, values: &[String]) -> Result<(), AthenaError> {
    if values.is_empty() {
        return Err(AthenaError::NoEnumValues { column: column.to_owned() });
    }
    for (position, value) in values.iter().enumerate() {
        if value.is_empty()
            || value.contains(',')
            || escape_path_name(value) != *value
            || values[..position].contains(value)
        {
            return Err(AthenaError::BadEnumValue { column: column.to_owned(), value: value.clone() });
        }
    }
    Ok(())
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

    fn by_dt_and_event() -> Vec<String> {
        vec!["dt".to_owned(), "event".to_owned()]
    }

    fn date(start: &str) -> PartitionProjection {
        PartitionProjection::Date { start: start.to_owned() }
    }

    fn values(values: &[&str]) -> PartitionProjection {
        PartitionProjection::Enum { values: values.iter().map(|value| value.to_string()).collect() }
    }

    fn projections(of: &[(&str, PartitionProjection)]) -> PartitionProjections {
        of.iter().map(|(column, projection)| (column.to_string(), projection.clone())).collect()
    }

    fn unpartitioned(table: &str, schema: &Schema, prefix: &str) -> String {
        let location = TableLocation { bucket: "lake", prefix };
        create_table_statement(table, schema, &[], location, &PartitionProjections::new()).unwrap()
    }

    /// The statement's text from `TBLPROPERTIES` on.
    fn properties(statement: &str) -> &str {
        &statement[statement.find("TBLPROPERTIES").expect("TBLPROPERTIES")..]
    }

    #[test]
    fn the_statement_lists_columns_partitions_location_and_projection() {
        let schema = with_lineage(&parse_output_schema(SCHEMA).unwrap()).unwrap();
        let projections =
            projections(&[("dt", date("2024-06-01")), ("event", values(&["processed", "dropped"]))]);
        let statement =
            create_table_statement("mail.events", &schema, &by_dt_and_event(), location(), &projections)
                .unwrap();
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
             TBLPROPERTIES (\n\
             \x20 'parquet.compression'='SNAPPY',\n\
             \x20 'projection.enabled'='true',\n\
             \x20 'projection.dt.type'='date',\n\
             \x20 'projection.dt.format'='yyyy-MM-dd',\n\
             \x20 'projection.dt.range'='2024-06-01,NOW',\n\
             \x20 'projection.dt.interval'='1',\n\
             \x20 'projection.dt.interval.unit'='DAYS',\n\
             \x20 'projection.event.type'='enum',\n\
             \x20 'projection.event.values'='processed,dropped',\n\
             \x20 'storage.location.template'='s3://lake/tables/events/dt=${dt}/event=${event}/'\n\
             )"
        );
    }

    #[test]
    fn a_partition_column_without_values_is_injected_and_says_so() {
        let schema = parse_output_schema(SCHEMA).unwrap();
        let projections = projections(&[("dt", date("NOW-2YEARS"))]);
        let statement =
            create_table_statement("events", &schema, &by_dt_and_event(), location(), &projections).unwrap();
        assert!(
            statement.contains(
                "PARTITIONED BY (\n  `dt` string,\n  `event` string COMMENT \
                 'projected as injected: every query must name its values (= or IN)'\n)\n"
            ),
            "{statement}"
        );
        assert!(statement.contains("  'projection.dt.range'='NOW-2YEARS,NOW',\n"), "{statement}");
        assert!(
            properties(&statement).ends_with(
                "  'projection.dt.interval.unit'='DAYS',\n\
                 \x20 'projection.event.type'='injected',\n\
                 \x20 'storage.location.template'='s3://lake/tables/events/dt=${dt}/event=${event}/'\n\
                 )"
            ),
            "{statement}"
        );
    }

    #[test]
    fn without_projections_partitions_are_left_to_msck_repair_as_before() {
        let schema = parse_output_schema(SCHEMA).unwrap();
        let none = PartitionProjections::new();
        let statement =
            create_table_statement("events", &schema, &by_dt_and_event(), location(), &none).unwrap();
        assert!(statement.contains("PARTITIONED BY (\n  `dt` string,\n  `event` string\n)\n"), "{statement}");
        assert_eq!(properties(&statement), "TBLPROPERTIES (\n  'parquet.compression'='SNAPPY'\n)");
    }

    #[test]
    fn the_location_template_follows_partition_order_and_hive_escaping() {
        let schema = parse_output_schema(
            r#"{"fields":[{"name":"n","type":"int32","nullable":false},
                          {"name":"a:b","type":"string","nullable":false}]}"#,
        )
        .unwrap();
        let statement = create_table_statement(
            "t",
            &schema,
            &["a:b".to_owned(), "n".to_owned()],
            TableLocation { bucket: "lake", prefix: "" },
            &projections(&[("n", values(&["1", "2"]))]),
        )
        .unwrap();
        assert!(statement.contains("  'projection.a:b.type'='injected',\n"), "{statement}");
        assert!(statement.contains("  'projection.n.values'='1,2',\n"), "{statement}");
        assert!(
            statement.contains("  'storage.location.template'='s3://lake/a%3Ab=${a:b}/n=${n}/'\n"),
            "{statement}"
        );
    }

    #[test]
    fn an_unpartitioned_table_has_no_partition_clause_or_projection() {
        let statement = unpartitioned("events", &parse_output_schema(SCHEMA).unwrap(), "");
        assert!(statement.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS `events` (\n  `dt` string,"));
        assert!(!statement.contains("PARTITIONED BY"));
        assert!(statement.contains("LOCATION 's3://lake/'\n"));
        assert_eq!(properties(&statement), "TBLPROPERTIES (\n  'parquet.compression'='SNAPPY'\n)");
    }

    #[test]
    fn awkward_names_are_quoted() {
        let schema =
            parse_output_schema(r#"{"fields":[{"name":"we`ird","type":"string","nullable":true}]}"#).unwrap();
        let statement = unpartitioned("t", &schema, "it's");
        assert!(statement.contains("  `we``ird` string\n"), "{statement}");
        assert!(statement.contains(r"LOCATION 's3://lake/it\'s/'"), "{statement}");
    }

    #[test]
    fn unknown_partitions_types_and_names_are_refused() {
        let schema = parse_output_schema(SCHEMA).unwrap();
        let none = PartitionProjections::new();
        assert!(matches!(
            create_table_statement("t", &schema, &["day".to_owned()], location(), &none),
            Err(AthenaError::UnknownPartitionColumn { column }) if column == "day"
        ));
        assert!(matches!(
            create_table_statement("", &schema, &[], location(), &none),
            Err(AthenaError::EmptyTableName)
        ));
        let other = Schema::new(vec![arrow::datatypes::Field::new("d", DataType::Date32, true)]);
        assert!(matches!(
            create_table_statement("t", &other, &[], location(), &none),
            Err(AthenaError::UnsupportedType { column, .. }) if column == "d"
        ));
    }

    #[test]
    fn projections_of_other_columns_or_with_bad_starts_or_values_are_refused() {
        let schema = parse_output_schema(SCHEMA).unwrap();
        let statement = |projections: &[(&str, PartitionProjection)]| {
            create_table_statement(
                "t",
                &schema,
                &by_dt_and_event(),
                location(),
                &self::projections(projections),
            )
        };
        assert!(matches!(
            statement(&[("tls", values(&["1"]))]),
            Err(AthenaError::ProjectionOfNonPartitionColumn { column, .. }) if column == "tls"
        ));
        for start in ["2024-6-1", "2024-13-01", "yesterday", "NOW", "NOW-YEARS", "NOW-1HOURS", "NOW+1DAYS"] {
            assert!(
                matches!(statement(&[("dt", date(start))]), Err(AthenaError::BadDateStart { .. })),
                "{start}"
            );
        }
        assert!(matches!(statement(&[("event", values(&[]))]), Err(AthenaError::NoEnumValues { .. })));
        for bad in [&["a", ""][..], &["a,b"], &["a/b"], &["a=b"], &["a", "a"]] {
            assert!(
                matches!(statement(&[("event", values(bad))]), Err(AthenaError::BadEnumValue { .. })),
                "{bad:?}"
            );
        }
        let message = statement(&[("dt", date("2024-6-1"))]).unwrap_err().to_string();
        assert!(message.contains("`dt`") && message.contains("yyyy-MM-dd"), "{message}");
    }
}
