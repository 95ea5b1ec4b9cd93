//! Read-only views of what the host has loaded.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;

/// The pipelines being served, with their source kind, steps and sinks.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let pipelines: Vec<Value> = state
        .pipelines
        .load()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "file": p.file.display().to_string(),
                "source": p.source.kind(),
                "steps": p.steps.iter().map(|s| s.plugin.clone()).collect::<Vec<_>>(),
                "sinks": p.sinks.iter().map(|s| json!({ "from": s.from, "kind": s.kind.name() })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "pipelines": pipelines }))
}

/// The loaded plugins with version, content hash and outputs.
pub async fn plugins(State(state): State<AppState>) -> Json<Value> {
    let plugins: Vec<Value> = state
        .registry
        .list()
        .into_iter()
        .map(|(name, handle)| {
            let plugin = handle.current();
            json!({
                "name": name,
                "version": plugin.version(),
                "contract": plugin.contract().as_str(),
                "content_hash": plugin.content_hash(),
                "outputs": plugin.info().outputs.iter().map(|o| o.name.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "plugins": plugins }))
}
