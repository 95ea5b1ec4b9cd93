//! The table from request path to pipeline endpoint, built from the loaded pipelines.
//!
//! Pipeline paths are looked up at request time (not compiled into the router), so a
//! pipeline reload swaps the whole table atomically.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};

use super::request_reply::{ReplySink, RequestReplyEndpoint};
use super::signature::{KeyError, SignatureVerifier};
use super::webhook::WebhookEndpoint;
use super::{ApiError, AppState, JobEndpoint};
use crate::config::{HostConfig, Pipeline, SinkKind, SourceConfig};
use crate::kafka::{DurableProducer, ProduceError};
use crate::pipeline::Chain;
use crate::plugin::{PluginError, PluginRegistry};
use crate::sink::sendgrid::SendgridClient;

/// A pipeline that answers HTTP requests.
pub enum Endpoint {
    Webhook(WebhookEndpoint),
    RequestReply(RequestReplyEndpoint),
    Job(JobEndpoint),
}

/// Why the endpoints could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("pipeline `{pipeline}`: {source}")]
    Signature { pipeline: String, source: KeyError },
    #[error("pipeline `{pipeline}`: {source}")]
    Kafka { pipeline: String, source: ProduceError },
    #[error("pipeline `{pipeline}`: {source}")]
    Plugin { pipeline: String, source: PluginError },
    #[error("pipeline `{pipeline}`: an `http` source cannot feed a `{kind}` sink (allowed: {allowed})")]
    UnpairedSink { pipeline: String, kind: &'static str, allowed: String },
}

/// Path → endpoint.
#[derive(Default)]
pub struct Endpoints {
    by_path: HashMap<String, Arc<Endpoint>>,
}

impl Endpoints {
    /// Builds an endpoint for every pipeline whose source is served over HTTP here.
    ///
    /// # Errors
    /// When a signature key is malformed, a Kafka producer cannot be created, a plugin named
    /// by a step is missing, or an `http` pipeline has a sink it cannot feed.
    pub fn build(
        pipelines: &[Pipeline],
        registry: &PluginRegistry,
        host: &HostConfig,
    ) -> Result<Self, EndpointError> {
        let mut by_path = HashMap::new();
        for pipeline in pipelines {
            let name = pipeline.name.clone();
            let endpoint = match &pipeline.source {
                SourceConfig::Webhook {
                    path,
                    topic,
                    body_limit_bytes,
                    signature,
                    body_format,
                    delivery_timeout_ms,
                    ..
                } => {
                    let verifier = match signature {
                        Some(config) => SignatureVerifier::from_config(config)
                            .map_err(|source| EndpointError::Signature { pipeline: name.clone(), source })?,
                        None => None,
                    };
                    if verifier.is_none() {
                        tracing::warn!(pipeline = %name, "webhook signatures are not checked (no key configured)");
                    }
                    let producer =
                        DurableProducer::new(&host.kafka, Duration::from_millis(*delivery_timeout_ms))
                            .map_err(|source| EndpointError::Kafka { pipeline: name.clone(), source })?;
                    let endpoint = WebhookEndpoint {
                        pipeline: name.clone(),
                        topic: topic.clone(),
                        body_limit: *body_limit_bytes,
                        body_format: *body_format,
                        verifier,
                        producer,
                    };
                    (path.clone(), Endpoint::Webhook(endpoint))
                }
                SourceConfig::Http { path, body_limit_bytes, reply } => {
                    let chain = Chain::new(pipeline, registry, host)
                        .map_err(|source| EndpointError::Plugin { pipeline: name.clone(), source })?;
                    let sinks = reply_sinks(pipeline, host)?;
                    let endpoint = RequestReplyEndpoint {
                        pipeline: name.clone(),
                        body_limit: *body_limit_bytes,
                        chain,
                        reply: reply.clone(),
                        sinks,
                    };
                    (path.clone(), Endpoint::RequestReply(endpoint))
                }
                // Read by a connector, not served over HTTP.
                SourceConfig::Kafka { .. } => continue,
                // Needs the database and S3 first; added with `Endpoints::insert`.
                SourceConfig::S3Job { .. } => continue,
            };
            by_path.insert(endpoint.0, Arc::new(endpoint.1));
        }
        Ok(Endpoints { by_path })
    }

    /// Serves `endpoint` at `path`, replacing what was there.
    pub fn insert(&mut self, path: &str, endpoint: Endpoint) {
        self.by_path.insert(path.to_owned(), Arc::new(endpoint));
    }

    /// Serves an endpoint another table already serves (kept across a pipeline reload).
    pub fn insert_shared(&mut self, path: &str, endpoint: Arc<Endpoint>) {
        self.by_path.insert(path.to_owned(), endpoint);
    }

    pub fn get(&self, path: &str) -> Option<Arc<Endpoint>> {
        self.by_path.get(path).cloned()
    }
}

fn reply_sinks(pipeline: &Pipeline, host: &HostConfig) -> Result<Vec<ReplySink>, EndpointError> {
    let output_of = |from: &str| from.to_string();
    let mut sinks = Vec::new();
    for sink in &pipeline.sinks {
        match &sink.kind {
            SinkKind::Sendgrid { reply_field } => {
                let client = SendgridClient::from_config(&host.sendgrid).map_err(|e| e.to_string());
                if let Err(reason) = &client {
                    tracing::warn!(pipeline = %pipeline.name, "{reason}; mail requests will be answered 503");
                }
                sinks.push(ReplySink::Sendgrid {
                    output: output_of(&sink.from),
                    client,
                    reply_field: reply_field.clone(),
                });
            }
            SinkKind::Kafka { topic } => {
                let producer = DurableProducer::new(&host.kafka, Duration::from_secs(10))
                    .map_err(|source| EndpointError::Kafka { pipeline: pipeline.name.clone(), source })?;
                sinks.push(ReplySink::Kafka {
                    output: output_of(&sink.from),
                    topic: topic.clone(),
                    producer,
                });
            }
            // Validation refuses these (`SourceConfig::pairing`); a request must not be answered
            // 202 while one of its sinks is left out.
            other => {
                return Err(EndpointError::UnpairedSink {
                    pipeline: pipeline.name.clone(),
                    kind: other.name(),
                    allowed: pipeline.source.pairing().sinks.join(", "),
                });
            }
        }
    }
    Ok(sinks)
}

/// The router's fallback: finds the pipeline serving the path.
pub async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(endpoint) = state.endpoints.load().get(uri.path()) else {
        return ApiError::NotFound(uri.path().to_string()).into_response();
    };
    match endpoint.as_ref() {
        // Asks for a load by POST body or, as the original API did, by GET query string.
        Endpoint::Job(job) => {
            job.handle(&method, &uri, body).await.unwrap_or_else(IntoResponse::into_response)
        }
        _ if method != Method::POST => {
            ApiError::MethodNotAllowed { method: method.to_string(), allowed: "POST" }.into_response()
        }
        Endpoint::Webhook(webhook) => webhook.handle(&headers, body).await.into_response(),
        Endpoint::RequestReply(reply) => reply.handle(&headers, body).await.into_response(),
    }
}
