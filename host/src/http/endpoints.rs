//! The table from request path to pipeline endpoint, built from the loaded pipelines.
//!
//! Pipeline paths are looked up at request time (not compiled into the router), so a
//! pipeline reload swaps the whole table atomically.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};

use super::request_reply::RequestReplyEndpoint;
use super::signature::KeyError;
use super::webhook::WebhookEndpoint;
use super::{ApiError, AppState, JobEndpoint};
use crate::config::{HostConfig, Pipeline, SourceConfig};
use crate::kafka::ProduceError;
use crate::plugin::{PluginError, PluginRegistry};

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

/// Job endpoints by path: they need the database, S3 and a job worker first, so the host starts
/// them once (`crate::job::serve_job_pipelines`) and every table of endpoints serves those.
pub type StartedJobs = Vec<(String, Arc<Endpoint>)>;

impl Endpoints {
    /// Builds an endpoint for every pipeline whose source is served over HTTP here, and serves
    /// the job endpoints in `jobs` at their paths.
    ///
    /// # Errors
    /// When a signature key is malformed, a Kafka producer cannot be created, a plugin named
    /// by a step is missing, or an `http` pipeline has a sink it cannot feed.
    pub fn build(
        pipelines: &[Pipeline],
        registry: &PluginRegistry,
        host: &HostConfig,
        jobs: &StartedJobs,
    ) -> Result<Self, EndpointError> {
        let mut by_path = HashMap::new();
        for pipeline in pipelines {
            let name = pipeline.name.clone();
            // Each source kind builds what serves it (see `crate::source`).
            let (path, endpoint) = match &pipeline.source {
                SourceConfig::Webhook(source) => {
                    (&source.path, Endpoint::Webhook(source.endpoint(&name, host)?))
                }
                SourceConfig::Http(source) => {
                    (&source.path, Endpoint::RequestReply(source.endpoint(pipeline, registry, host)?))
                }
                // Read by a connector, not served over HTTP.
                SourceConfig::Kafka(_) => continue,
                // Started with the job services: served from `jobs` below.
                SourceConfig::S3Job(_) => continue,
            };
            by_path.insert(path.clone(), Arc::new(endpoint));
        }
        for (path, endpoint) in jobs {
            by_path.insert(path.clone(), endpoint.clone());
        }
        Ok(Endpoints { by_path })
    }

    pub fn get(&self, path: &str) -> Option<Arc<Endpoint>> {
        self.by_path.get(path).cloned()
    }
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
