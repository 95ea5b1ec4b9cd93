//! The `webhook` source: an HTTP endpoint that checks the sender's signature and the body's
//! shape, stores the raw body in a Kafka topic and answers 2xx only once the broker has it;
//! with steps or sinks, a connector then reads the topic as a `kafka` source would.

use std::time::Duration;

use serde::Deserialize;

use super::{ConsumerSettings, kafka};
use crate::config::defaults::{
    default_batch_max_ms, default_batch_records, default_body_limit, default_delivery_timeout_ms,
    default_members,
};
use crate::config::{BodyFormat, HostConfig, Pipeline, SignatureConfig};
use crate::http::EndpointError;
use crate::http::signature::SignatureVerifier;
use crate::http::webhook::WebhookEndpoint;
use crate::kafka::DurableProducer;
use crate::sink::Runner;

pub const KIND: &str = "webhook";

/// What the connector behind the endpoint writes, as for a `kafka` source.
pub const RUNNER: Runner = kafka::RUNNER;

/// `[source]` with `kind = "webhook"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSource {
    pub path: String,
    pub topic: String,
    pub group: String,
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Checks the sender's signature over the raw body before anything else.
    pub signature: Option<SignatureConfig>,
    /// What the body must be before it is stored; anything else is answered 400.
    #[serde(default)]
    pub body_format: BodyFormat,
    /// How long to wait for the broker to confirm a write before answering 503.
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u64,
    #[serde(default = "default_batch_records")]
    pub batch_records: usize,
    #[serde(default = "default_batch_max_ms")]
    pub batch_max_ms: u64,
    /// Consumer-group members this host runs for the pipeline (see [`kafka::KafkaSource::members`]).
    #[serde(default = "default_members")]
    pub members: usize,
}

impl WebhookSource {
    /// What the connector behind the endpoint reads.
    pub fn consumer(&self) -> ConsumerSettings<'_> {
        ConsumerSettings {
            topic: &self.topic,
            group: &self.group,
            batch_records: self.batch_records,
            batch_max_ms: self.batch_max_ms,
            members: self.members,
        }
    }

    pub(super) fn problems(&self, pipeline: &Pipeline) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if runs_connector(pipeline) {
            problems.extend(kafka::connector_problems(pipeline, "a `webhook` pipeline with steps or sinks"));
        }
        problems.extend(kafka::members_problem(self.members));
        problems
    }

    /// The endpoint of pipeline `pipeline`: its signature check (none when no key is set,
    /// which is logged) and a producer whose 2xx means stored.
    ///
    /// # Errors
    /// [`EndpointError`] when the key is malformed or the producer cannot be created.
    pub fn endpoint(&self, pipeline: &str, host: &HostConfig) -> Result<WebhookEndpoint, EndpointError> {
        let verifier = match &self.signature {
            Some(config) => SignatureVerifier::from_config(config)
                .map_err(|source| EndpointError::Signature { pipeline: pipeline.to_owned(), source })?,
            None => None,
        };
        if verifier.is_none() {
            tracing::warn!(pipeline, "webhook signatures are not checked (no key configured)");
        }
        let producer = DurableProducer::new(&host.kafka, Duration::from_millis(self.delivery_timeout_ms))
            .map_err(|source| EndpointError::Kafka { pipeline: pipeline.to_owned(), source })?;
        Ok(WebhookEndpoint {
            pipeline: pipeline.to_owned(),
            topic: self.topic.clone(),
            body_limit: self.body_limit_bytes,
            body_format: self.body_format,
            verifier,
            producer,
        })
    }
}

/// A webhook pipeline with steps or sinks has a connector; a bare one only stores its bodies.
pub(super) fn runs_connector(pipeline: &Pipeline) -> bool {
    !pipeline.steps.is_empty() || !pipeline.sinks.is_empty()
}
