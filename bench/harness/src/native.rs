//! The normalization plugin compiled natively, its rows taken into the host's typed rows: what
//! `plugin-ratio` and `bare-connector` run where sluice runs the plugin as WebAssembly.

use std::sync::Arc;

use sluice::plugin::rows::{ColumnData, ColumnValues, RowBatch, Texts};
use sluice::plugin::schema::{ColumnSpec, ColumnType, OutputSchema};
use sluice_plugin_sdk::bindings::sluice::transform::types as native;

/// The host's schema of output `info`, as the host reads a plugin's declaration.
///
/// # Errors
/// When the declaration does not make a schema (no columns, a name twice).
pub fn host_schema(info: &native::OutputInfo) -> anyhow::Result<Arc<OutputSchema>> {
    let columns = info
        .columns
        .iter()
        .map(|column| ColumnSpec {
            name: column.name.clone(),
            column_type: match column.type_ {
                native::ColumnType::Text => ColumnType::Text,
                native::ColumnType::Int32 => ColumnType::Int32,
                native::ColumnType::Int64 => ColumnType::Int64,
                native::ColumnType::Float64 => ColumnType::Float64,
                native::ColumnType::Boolean => ColumnType::Boolean,
                native::ColumnType::TimestampMs => ColumnType::TimestampMs,
                native::ColumnType::TextList => ColumnType::TextList,
                native::ColumnType::Json => ColumnType::Json,
            },
            nullable: column.nullable,
        })
        .collect();
    Ok(Arc::new(OutputSchema::new(info.name.clone(), columns)?))
}

/// The native plugin's rows as the host's typed rows, moving the buffers (no value is copied)
/// and checking them as the host checks a component's.
///
/// # Errors
/// When the rows break the contract.
pub fn host_rows(declared: &Arc<OutputSchema>, batch: native::OutputBatch) -> anyhow::Result<RowBatch> {
    let texts =
        |blobs: native::Blobs| Texts::from_blobs(blobs.bytes, blobs.offsets).map_err(anyhow::Error::msg);
    let columns = batch
        .columns
        .into_iter()
        .map(|column| {
            let values = match column.values {
                native::ColumnValues::Text(blobs) => ColumnValues::Text(texts(blobs)?),
                native::ColumnValues::Json(blobs) => ColumnValues::Json(texts(blobs)?),
                native::ColumnValues::Int32(values) => ColumnValues::Int32(values),
                native::ColumnValues::Int64(values) => ColumnValues::Int64(values),
                native::ColumnValues::Float64(values) => ColumnValues::Float64(values),
                native::ColumnValues::Boolean(values) => ColumnValues::Boolean(values),
                native::ColumnValues::TimestampMs(values) => ColumnValues::TimestampMs(values),
                native::ColumnValues::TextList(lists) => {
                    ColumnValues::text_list(texts(lists.items)?, lists.offsets).map_err(anyhow::Error::msg)?
                }
            };
            ColumnData::new(values, &column.nulls).map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keys = batch.keys.map(texts).transpose()?;
    Ok(RowBatch::new(declared.clone(), batch.inputs, keys, columns)?)
}
