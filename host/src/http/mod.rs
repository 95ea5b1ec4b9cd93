//! HTTP endpoints: one file per endpoint family, sharing [`AppState`] and [`ApiError`].

mod body;
mod endpoints;
mod error;
mod health;
mod pipelines;
mod request_reply;
pub mod signature;
mod webhook;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::routing::get;

pub use endpoints::{EndpointError, Endpoints};
pub use error::ApiError;

use crate::config::Pipeline;
use crate::plugin::PluginRegistry;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<PluginRegistry>,
    pub pipelines: Arc<ArcSwap<Vec<Pipeline>>>,
    pub endpoints: Arc<ArcSwap<Endpoints>>,
}

impl AppState {
    pub fn new(registry: Arc<PluginRegistry>, pipelines: Vec<Pipeline>, endpoints: Endpoints) -> Self {
        AppState {
            registry,
            pipelines: Arc::new(ArcSwap::from_pointee(pipelines)),
            endpoints: Arc::new(ArcSwap::from_pointee(endpoints)),
        }
    }
}

/// All routes of the host.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .route("/v1/pipelines", get(pipelines::list))
        .route("/v1/plugins", get(pipelines::plugins))
        .fallback(endpoints::dispatch)
        .with_state(state)
}
