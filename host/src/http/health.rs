//! Liveness and readiness for orchestrators.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::{ApiError, AppState};

/// The process is up and answering.
pub async fn alive() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

/// Plugins and pipelines are loaded and the host can take traffic.
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let plugins = state.registry.list().len();
    let pipelines = state.pipelines.load().len();
    if plugins == 0 {
        return Err(ApiError::unavailable("no plugins are loaded"));
    }
    Ok(Json(json!({ "status": "ready", "plugins": plugins, "pipelines": pipelines })))
}
