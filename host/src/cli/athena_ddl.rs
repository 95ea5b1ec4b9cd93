//! `sluice athena-ddl`: print the `CREATE EXTERNAL TABLE` for a pipeline's Parquet sinks.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use super::HostOptions;
use super::sweep::load_pipeline;
use crate::config::StoreLocation;
use crate::pipeline::connector::output_schema;
use crate::sink::parquet::athena::{TableLocation, create_table_statement};
use crate::sink::parquet::schema::{parse_output_schema, with_lineage};

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
}

pub fn run(args: AthenaDdlArgs) -> anyhow::Result<ExitCode> {
    let config = args.host.load()?;
    let (registry, pipeline) = load_pipeline(&config, &args.pipeline)?;
    let mut printed = 0;
    for sink in &pipeline.sinks {
        let Some(settings) = sink.kind.table() else { continue };
        let StoreLocation::S3 { bucket, prefix } = &settings.location else { continue };
        let schema_text = output_schema(&registry, &sink.from)
            .with_context(|| format!("no plugin declares `{}`", sink.from))?;
        let schema = with_lineage(&parse_output_schema(&schema_text)?)?;
        let default_name = sink.from.rsplit('.').next().unwrap_or(&sink.from).replace('-', "_");
        let table = args.table.clone().unwrap_or(default_name);
        let statement = create_table_statement(
            &table,
            &schema,
            &settings.partition_by,
            TableLocation { bucket, prefix },
        )?;
        println!("{statement}");
        printed += 1;
    }
    if printed == 0 {
        bail!("pipeline `{}` has no parquet-s3 sink", pipeline.name);
    }
    Ok(ExitCode::SUCCESS)
}
