//! Liveness, readiness and metrics for orchestrators.

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiError, AppState};

/// The process is up and answering.
pub async fn alive() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

/// Plugins are loaded and every service the pipelines use answers: 200, or 503 with what is
/// down.
pub async fn ready(State(state): State<AppState>) -> Response {
    let plugins = state.registry.list().len();
    let pipelines = state.pipelines.load().len();
    let dependencies = state.dependencies.check().await;
    let plugins_ok = plugins > 0;
    let (ok, services) = match dependencies {
        Ok(services) => (plugins_ok, services),
        Err(services) => (false, services),
    };
    let body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "plugins": plugins,
        "pipelines": pipelines,
        "services": services,
        "reason": if plugins_ok { Value::Null } else { json!("no plugins are loaded") },
    });
    let status = if ok { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// Prometheus text exposition of every metric the host records.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let handle = state.metrics.as_ref().ok_or_else(|| ApiError::NotFound("/metrics".into()))?;
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response())
}
