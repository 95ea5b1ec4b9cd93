//! `sluice athena-ddl`: print the `CREATE EXTERNAL TABLE` for a pipeline's Parquet sinks.
//!
//! The values of partition columns come from the command line (`--date`, `--enum`): they are
//! the plugin's business, and the host holds no list of them.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use super::HostOptions;
use super::sweep::load_pipeline;
use crate::config::StoreLocation;
use crate::sink::output_schema;
use crate::sink::parquet::athena::{
    PartitionProjection, PartitionProjections, TableLocation, create_table_statement,
};
use crate::sink::parquet::schema::{arrow_schema, with_lineage};

#[derive(Debug, Args)]
pub struct AthenaDdlArgs {
    #[command(flatten)]
    host: HostOptions,
    /// The pipeline whose parquet-s3 sinks to describe.
    #[arg(long)]
    pipeline: String,
    /// The table name (`name` or `database.name`); defaults to the output's name.
    #[arg(long)]
    table: Option<String>,
    /// A partition column holding days as yyyy-MM-dd and the first day it holds, e.g.
    /// `dt=2024-06-01` (or `dt=NOW-1YEARS`); Athena looks for no earlier day. Repeatable.
    #[arg(long = "date", value_name = "COLUMN=START", value_parser = parse_date)]
    dates: Vec<(String, String)>,
    /// A partition column holding one of known values, e.g. `event=processed,dropped`.
    /// Repeatable. Partition columns named by neither `--date` nor `--enum` are projected as
    /// `injected`: queries must then name their values.
    #[arg(long = "enum", value_name = "COLUMN=VALUES", value_parser = parse_enum)]
    enums: Vec<(String, Vec<String>)>,
}

pub fn run(args: AthenaDdlArgs) -> anyhow::Result<ExitCode> {
    let projections = projections(&args)?;
    let config = args.host.load()?;
    let (registry, pipeline) = load_pipeline(&config, &args.pipeline)?;
    let tables: Vec<_> = pipeline
        .sinks
        .iter()
        .filter_map(|sink| {
            let settings = sink.kind.parquet()?;
            let StoreLocation::S3 { bucket, prefix } = settings.location else { return None };
            Some((sink, bucket, prefix, settings.partition_by))
        })
        .collect();
    if tables.is_empty() {
        bail!("pipeline `{}` has no parquet-s3 sink", pipeline.name);
    }
    if let Some(column) = projections
        .keys()
        .find(|column| !tables.iter().any(|(_, _, _, partition_by)| partition_by.contains(column)))
    {
        bail!("`{column}` is not a partition column of pipeline `{}`'s parquet-s3 sinks", pipeline.name);
    }
    for (sink, bucket, prefix, partition_by) in &tables {
        let declared = output_schema(&registry, &sink.from)
            .with_context(|| format!("no plugin declares `{}`", sink.from))?;
        let schema = with_lineage(&arrow_schema(&declared)?)?;
        let default_name = sink.from.rsplit('.').next().unwrap_or(&sink.from).replace('-', "_");
        let table = args.table.clone().unwrap_or(default_name);
        let own_projections: PartitionProjections = projections
            .iter()
            .filter(|(column, _)| partition_by.contains(column))
            .map(|(column, projection)| (column.clone(), projection.clone()))
            .collect();
        let statement = create_table_statement(
            &table,
            &schema,
            partition_by,
            TableLocation { bucket, prefix },
            &own_projections,
        )
        .with_context(|| format!("sink from `{}`", sink.from))?;
        println!("{statement}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--date` and `--enum` options by column; a column may be named once.
fn projections(args: &AthenaDdlArgs) -> anyhow::Result<PartitionProjections> {
    let dates =
        args.dates.iter().map(|(column, start)| (column, PartitionProjection::Date { start: start.clone() }));
    let enums = args
        .enums
        .iter()
        .map(|(column, values)| (column, PartitionProjection::Enum { values: values.clone() }));
    let mut projections = PartitionProjections::new();
    for (column, projection) in dates.chain(enums) {
        if projections.insert(column.clone(), projection).is_some() {
            bail!("`{column}` is given more than one projection; name it in one --date or --enum");
        }
    }
    Ok(projections)
}

/// `COLUMN=START` of `--date`.
fn parse_date(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((column, start)) if !column.is_empty() && !start.is_empty() => {
            Ok((column.to_owned(), start.to_owned()))
        }
        _ => Err(format!("`{text}` is not COLUMN=START, e.g. dt=2024-06-01")),
    }
}

/// `COLUMN=VALUE,VALUE,…` of `--enum`; spaces around a value are dropped.
fn parse_enum(text: &str) -> Result<(String, Vec<String>), String> {
    match text.split_once('=') {
        Some((column, values)) if !column.is_empty() && !values.is_empty() => {
            Ok((column.to_owned(), values.split(',').map(|value| value.trim().to_owned()).collect()))
        }
        _ => Err(format!("`{text}` is not COLUMN=VALUE,VALUE,…, e.g. event=processed,dropped")),
    }
}
