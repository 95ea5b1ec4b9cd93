//! HTTP endpoints: one file per endpoint family, sharing [`AppState`] and [`ApiError`].

mod body;
mod endpoints;
mod error;
mod health;
mod jobs;
mod pipelines;
mod request_reply;
pub mod signature;
mod webhook;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::routing::{any, get};

pub use endpoints::{Endpoint, EndpointError, Endpoints};
pub use error::ApiError;
pub use jobs::{JobEndpoint, job_view};

use crate::config::Pipeline;
use crate::job::JobStore;
use crate::plugin::PluginRegistry;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<PluginRegistry>,
    pub pipelines: Arc<ArcSwap<Vec<Pipeline>>>,
    pub endpoints: Arc<ArcSwap<Endpoints>>,
    /// The job records, when a pipeline runs jobs; answers `GET /v1/jobs/{id}`.
    pub jobs: Option<Arc<JobStore>>,
}

impl AppState {
    pub fn new(registry: Arc<PluginRegistry>, pipelines: Vec<Pipeline>, endpoints: Endpoints) -> Self {
        AppState {
            registry,
            pipelines: Arc::new(ArcSwap::from_pointee(pipelines)),
            endpoints: Arc::new(ArcSwap::from_pointee(endpoints)),
            jobs: None,
        }
    }

    /// Serves job status from `store`.
    #[must_use]
    pub fn with_job_store(mut self, store: Arc<JobStore>) -> Self {
        self.jobs = Some(store);
        self
    }
}

/// All routes of the host.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .route("/v1/pipelines", get(pipelines::list))
        .route("/v1/plugins", get(pipelines::plugins))
        .route("/v1/jobs/{id}", any(jobs::status))
        .fallback(endpoints::dispatch)
        .with_state(state)
}
