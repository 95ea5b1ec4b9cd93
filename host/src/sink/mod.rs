//! Sinks: where a pipeline's named outputs are written.

pub mod sendgrid;
