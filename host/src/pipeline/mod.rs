//! Running a pipeline's plugin chain: the source's records go to the first steps, each named
//! output to the steps and sinks that read it.

pub mod chain;
pub mod connector;
pub mod outputs;
pub mod reload;
pub mod routing;
pub mod shadow_samples;
pub mod sweep;

pub use chain::{Chain, ChainFailure, ChainOutput, OutputRecord};
pub use connector::{Connector, ConnectorError, MemberConsumer};
