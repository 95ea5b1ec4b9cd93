//! Where a Kafka-fed pipeline's results go: its windowed sinks, whatever their kinds, and its
//! dead-letter store, built once and shared by the connector's members and by `sluice sweep`.
//! The dead-letter location also keeps the connector's window markers, a place of their own
//! that no sink kind decides.

use crate::config::{HostConfig, Pipeline};
use crate::object_store::ObjectStore;
use crate::object_store::{LocationError, ObjectStores};
use crate::plugin::PluginRegistry;
use crate::sink::windowed::{BuildContext, WindowedSink, WindowedSinkError};

/// Why a pipeline's sinks or dead-letter store cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum OutputsError {
    #[error("pipeline `{pipeline}`: {problem}")]
    Setup { pipeline: String, problem: String },
    #[error("pipeline `{pipeline}`: {source}")]
    Sink {
        pipeline: String,
        #[source]
        source: WindowedSinkError,
    },
    #[error(transparent)]
    Stores(#[from] LocationError),
}

/// The windowed sinks and dead-letter store of one pipeline.
pub struct Outputs {
    /// In the pipeline's sink order; rows are routed to them by index.
    pub sinks: Vec<Box<dyn WindowedSink>>,
    pub dead_letters: ObjectStore,
    pub dead_letter_prefix: String,
}

impl Outputs {
    /// Builds the sinks of `pipeline` (each must be a kind a connector writes) and its
    /// dead-letter store.
    ///
    /// # Errors
    /// [`OutputsError`] when there is no sink or no dead-letter store, a sink is of another kind
    /// or names an output no loaded plugin declares, or a store cannot be reached.
    pub async fn build(
        pipeline: &Pipeline,
        registry: &PluginRegistry,
        stores: &ObjectStores,
        host: &HostConfig,
    ) -> Result<Self, OutputsError> {
        let setup =
            |problem: &str| OutputsError::Setup { pipeline: pipeline.name.clone(), problem: problem.into() };
        if pipeline.sinks.is_empty() {
            return Err(setup("a Kafka-fed pipeline needs at least one sink"));
        }
        let Some(dead_letters) = &pipeline.dead_letters else {
            return Err(setup("a Kafka-fed pipeline needs [dead_letters], so failed records are kept"));
        };
        let context = BuildContext { pipeline: &pipeline.name, registry, stores, host };
        let mut sinks = Vec::with_capacity(pipeline.sinks.len());
        for sink in &pipeline.sinks {
            let built = sink
                .windowed(&context)
                .await
                .map_err(|source| OutputsError::Sink { pipeline: pipeline.name.clone(), source })?;
            sinks.push(built);
        }
        let location = dead_letters.location();
        Ok(Outputs {
            sinks,
            dead_letters: stores.store(&location).await?,
            dead_letter_prefix: location.prefix().to_owned(),
        })
    }

    /// The `<plugin>.<output>` each sink reads, in sink order.
    pub fn sources(&self) -> Vec<&str> {
        self.sinks.iter().map(|sink| sink.from()).collect()
    }
}
