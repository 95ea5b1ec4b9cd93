//! The `http` source: request/reply. Each request body is one record; the answer waits for the
//! plugins and the sinks, and its body is the record the pipeline names as its reply.

use std::time::Duration;

use serde::Deserialize;

use crate::config::defaults::default_body_limit;
use crate::config::{HostConfig, Pipeline, SinkKind};
use crate::http::EndpointError;
use crate::http::request_reply::{ReplySink, RequestReplyEndpoint};
use crate::kafka::DurableProducer;
use crate::pipeline::Chain;
use crate::plugin::PluginRegistry;
use crate::sink::Runner;
use crate::sink::sendgrid::SendgridClient;

pub const KIND: &str = "http";

/// A request waits for its sinks before it is answered.
pub const RUNNER: Runner = Runner::RequestReply;

/// `[source]` with `kind = "http"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSource {
    pub path: String,
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// `<plugin>.<output>` whose record (a JSON object) is the answer's body, so what the
    /// caller is told is the plugin's to say; the answering sinks add what they report.
    pub reply: Option<String>,
}

impl HttpSource {
    /// The endpoint of `pipeline`: its plugin chain and its answering sinks.
    ///
    /// # Errors
    /// [`EndpointError`] when a plugin is missing, a producer cannot be created, or a sink is
    /// one this source cannot feed (validation refuses those first).
    pub fn endpoint(
        &self,
        pipeline: &Pipeline,
        registry: &PluginRegistry,
        host: &HostConfig,
    ) -> Result<RequestReplyEndpoint, EndpointError> {
        let chain = Chain::new(pipeline, registry, host)
            .map_err(|source| EndpointError::Plugin { pipeline: pipeline.name.clone(), source })?;
        Ok(RequestReplyEndpoint {
            pipeline: pipeline.name.clone(),
            body_limit: self.body_limit_bytes,
            chain,
            reply: self.reply.clone(),
            sinks: reply_sinks(pipeline, host)?,
        })
    }
}

/// The sinks that act before the answer, in the pipeline's order.
fn reply_sinks(pipeline: &Pipeline, host: &HostConfig) -> Result<Vec<ReplySink>, EndpointError> {
    let mut sinks = Vec::new();
    for sink in &pipeline.sinks {
        match &sink.kind {
            SinkKind::Sendgrid(settings) => {
                let client = SendgridClient::from_config(&host.sendgrid).map_err(|e| e.to_string());
                if let Err(reason) = &client {
                    tracing::warn!(pipeline = %pipeline.name, "{reason}; mail requests will be answered 503");
                }
                sinks.push(ReplySink::Sendgrid {
                    output: sink.from.clone(),
                    client,
                    reply_field: settings.reply_field.clone(),
                });
            }
            SinkKind::Kafka(settings) => {
                let producer = DurableProducer::new(&host.kafka, Duration::from_secs(10))
                    .map_err(|source| EndpointError::Kafka { pipeline: pipeline.name.clone(), source })?;
                sinks.push(ReplySink::Kafka {
                    output: sink.from.clone(),
                    topic: settings.topic.clone(),
                    value: settings.value,
                    producer,
                });
            }
            // Validation refuses these (`RUNNER`); a request must not be answered 202 while one
            // of its sinks is left out.
            other => {
                return Err(EndpointError::UnpairedSink {
                    pipeline: pipeline.name.clone(),
                    kind: other.name(),
                    allowed: crate::sink::kinds_under(RUNNER).join(", "),
                });
            }
        }
    }
    Ok(sinks)
}
