//! Running a pipeline's plugin chain: the source's records go to the first steps, each named
//! output to the steps and sinks that read it.

mod chain;

pub use chain::{Chain, ChainFailure, ChainOutput, OutputRecord};
