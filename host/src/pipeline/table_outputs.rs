//! Where a Kafka-fed pipeline's results go: its table sinks and its dead-letter store, built
//! once and shared by the connector's members and by `sluice sweep`.

use std::sync::Arc;

use crate::config::Pipeline;
use crate::object_store::ObjectStore;
use crate::object_store::{LocationError, ObjectStores};
use crate::plugin::PluginRegistry;
use crate::plugin::schema::OutputSchema;
use crate::sink::table::{TableError, TableSink};

/// Why a pipeline's tables or dead-letter store cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TableOutputsError {
    #[error("pipeline `{pipeline}`: {problem}")]
    Setup { pipeline: String, problem: String },
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Stores(#[from] LocationError),
}

/// The table sinks and dead-letter store of one pipeline.
pub struct TableOutputs {
    /// In the pipeline's sink order; rows are routed to them by index.
    pub tables: Vec<TableSink>,
    pub dead_letters: ObjectStore,
    pub dead_letter_prefix: String,
}

impl TableOutputs {
    /// Builds the table sinks of `pipeline` (every sink must be a table) and its dead-letter
    /// store.
    ///
    /// # Errors
    /// [`TableOutputsError`] when a sink is not a table, names an output no loaded plugin
    /// declares, or a store cannot be reached.
    pub async fn build(
        pipeline: &Pipeline,
        registry: &PluginRegistry,
        stores: &ObjectStores,
    ) -> Result<Self, TableOutputsError> {
        let setup = |problem: String| TableOutputsError::Setup { pipeline: pipeline.name.clone(), problem };
        if pipeline.sinks.is_empty() {
            return Err(setup(
                "a Kafka-fed pipeline needs at least one parquet-s3 or parquet-local sink".into(),
            ));
        }
        let Some(dead_letters) = &pipeline.dead_letters else {
            return Err(setup(
                "a Kafka-fed pipeline needs [dead_letters], so failed records are kept".into(),
            ));
        };
        let mut tables = Vec::new();
        for sink in &pipeline.sinks {
            let Some(settings) = sink.kind.table() else {
                return Err(setup(format!(
                    "sink `{}` is `{}`; a Kafka-fed pipeline writes parquet-s3 or parquet-local sinks",
                    sink.from,
                    sink.kind.name()
                )));
            };
            let schema = output_schema(registry, &sink.from).ok_or_else(|| {
                setup(format!("sink `{}` names an output no loaded plugin declares", sink.from))
            })?;
            let store = stores.store(&settings.location).await?;
            tables.push(TableSink::new(&sink.from, settings, store, schema)?);
        }
        let location = dead_letters.location();
        Ok(TableOutputs {
            tables,
            dead_letters: stores.store(&location).await?,
            dead_letter_prefix: location.prefix().to_owned(),
        })
    }
}

/// The columns `<plugin>.<output>` declares, from the plugin loaded now.
pub fn output_schema(registry: &PluginRegistry, from: &str) -> Option<Arc<OutputSchema>> {
    let (plugin, output) = from.split_once('.')?;
    let handle = registry.get(plugin)?;
    let current = handle.current();
    current.info().output(output).cloned()
}
