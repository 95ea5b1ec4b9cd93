//! HTTP endpoints: one file per endpoint family, sharing [`AppState`] and [`ApiError`].

mod admin;
mod body;
mod endpoints;
mod error;
mod health;
mod jobs;
mod pipelines;
pub mod readiness;
pub(crate) mod request_reply;
pub mod signature;
pub(crate) mod webhook;

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{any, get, post, put};
use metrics_exporter_prometheus::PrometheusHandle;

pub use admin::AdminApi;
pub use endpoints::{Endpoint, EndpointError, Endpoints, StartedJobs};
pub use error::ApiError;
pub use jobs::{JobEndpoint, job_view};

use crate::config::Pipeline;
use crate::job::JobRecords;
use crate::plugin::PluginRegistry;
use crate::telemetry;
use readiness::Dependencies;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<PluginRegistry>,
    pub pipelines: Arc<ArcSwap<Vec<Pipeline>>>,
    pub endpoints: Arc<ArcSwap<Endpoints>>,
    /// The job records, when a pipeline runs jobs; answers `GET /v1/jobs/{id}`.
    pub jobs: Option<Arc<JobRecords>>,
    /// Uploads and reloads; `None` answers the admin routes 403.
    pub admin: Option<Arc<AdminApi>>,
    /// Renders `/metrics`; `None` when no recorder is installed (404).
    pub metrics: Option<PrometheusHandle>,
    /// What `/readyz` checks besides the plugins.
    pub dependencies: Arc<Dependencies>,
}

impl AppState {
    pub fn new(registry: Arc<PluginRegistry>, pipelines: Vec<Pipeline>, endpoints: Endpoints) -> Self {
        AppState {
            registry,
            pipelines: Arc::new(ArcSwap::from_pointee(pipelines)),
            endpoints: Arc::new(ArcSwap::from_pointee(endpoints)),
            jobs: None,
            admin: None,
            metrics: None,
            dependencies: Arc::new(Dependencies::none()),
        }
    }

    /// Serves the admin API.
    #[must_use]
    pub fn with_admin(mut self, admin: AdminApi) -> Self {
        self.admin = Some(Arc::new(admin));
        self
    }

    /// Serves `/metrics` from `handle`.
    #[must_use]
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// Makes `/readyz` check `dependencies`.
    #[must_use]
    pub fn with_dependencies(mut self, dependencies: Dependencies) -> Self {
        self.dependencies = Arc::new(dependencies);
        self
    }

    /// Serves job status from `store`.
    #[must_use]
    pub fn with_job_store(mut self, store: Arc<JobRecords>) -> Self {
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
        .route("/metrics", get(health::metrics))
        .route("/v1/jobs/{id}", any(jobs::status))
        .route("/v1/admin/plugins", get(admin::list_plugins))
        .route("/v1/admin/plugins/{name}", put(admin::upload_plugin))
        .route(
            "/v1/admin/plugins/{name}/shadow",
            get(admin::shadow_status).put(admin::upload_shadow).delete(admin::discard_shadow),
        )
        .route("/v1/admin/plugins/{name}/shadow/promote", post(admin::promote_shadow))
        .route(
            "/v1/admin/plugins/{name}/canary",
            get(admin::canary_status).put(admin::upload_canary).delete(admin::discard_canary),
        )
        .route("/v1/admin/plugins/{name}/canary/promote", post(admin::promote_canary))
        .route("/v1/admin/pipelines/reload", post(admin::reload_pipelines))
        .fallback(endpoints::dispatch)
        .layer(axum::middleware::from_fn(count_requests))
        .with_state(state)
}

/// Counts and times every request by route: the route's pattern, a pipeline's path, or
/// `unmatched` for a 404 (so unknown paths cannot grow the label set).
async fn count_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let pattern = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let route = match pattern {
        Some(pattern) => pattern,
        None if status == StatusCode::NOT_FOUND => "unmatched".to_owned(),
        None => path,
    };
    metrics::histogram!(telemetry::HTTP_DURATION, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(telemetry::HTTP_REQUESTS, "route" => route, "method" => method, "status" => status.as_u16().to_string())
        .increment(1);
    response
}
