//! The admin API: plugin status, plugin uploads, shadowing and canary candidates and pipeline
//! reloads,
//! behind a bearer token.
//!
//! The token comes from the environment variable `admin.token_env` at start; without it the
//! API answers 403 naming the variable. The token is compared by digest and never logged.
//! Every refused credential gets the same 401, so a caller learns nothing about which part
//! was wrong; a plugin name is checked before anything touches the plugins directory.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, CONNECTION};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState, Endpoint, Endpoints, StartedJobs};
use crate::config::{HostConfig, Pipeline, SourceConfig, is_plain_name, load_pipeline_dir};
use crate::pipeline::reload::{
    Offered, PluginSwapper, ShadowOffered, persist_canary, persist_candidate, persist_component,
    remove_canary, remove_candidate,
};
use crate::plugin::canary::{Canary, CanarySettings};
use crate::plugin::shadow::MAX_SAMPLES;
use crate::plugin::{PluginError, PluginHandle, Rejection, Shadow};
use crate::sink::dead_letter::SHADOW_DIR;

/// The answer to every refused credential: missing, wrong, or sent some other way.
const SEND_THE_TOKEN: &str = "send the admin token as `Authorization: Bearer <token>`";

/// The longest plugin name an upload may use: the name becomes the file names `{name}.wasm`,
/// `{name}.shadow.wasm` and their `.….upload` temporaries, which the file system caps at 255
/// bytes, and a metric label.
const MAX_PLUGIN_NAME_LEN: usize = 64;

/// What the admin endpoints need beyond the shared state.
pub struct AdminApi {
    token_digest: Option<[u8; 32]>,
    token_env: String,
    max_upload_bytes: usize,
    swapper: PluginSwapper,
    host: HostConfig,
    /// Held through an upload's check, swap and file write, so two uploads of one plugin
    /// cannot leave the running version from one and the kept file from the other.
    uploads: tokio::sync::Mutex<()>,
}

impl AdminApi {
    /// Reads the token from the environment variable the config names.
    pub fn new(host: &HostConfig, swapper: PluginSwapper) -> Self {
        let token_env = host.admin.token_env.clone();
        let token_digest = std::env::var(&token_env)
            .ok()
            .filter(|token| !token.trim().is_empty())
            .map(|token| Sha256::digest(token.trim().as_bytes()).into());
        if token_digest.is_none() {
            tracing::info!("the admin API is off: {token_env} is not set");
        }
        let max_upload_bytes =
            usize::try_from(host.admin.max_upload_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        AdminApi {
            token_digest,
            token_env,
            max_upload_bytes,
            swapper,
            host: host.clone(),
            uploads: tokio::sync::Mutex::new(()),
        }
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.token_digest else {
            return Err(ApiError::Forbidden(format!(
                "the admin API is off; set {} to enable it",
                self.token_env
            )));
        };
        // Exactly one header reading exactly `Bearer <token>`, nothing trimmed: two headers are
        // ambiguous (a proxy may have checked the other one), and a token in the query string
        // is never looked at, since URLs end up in access logs and browser history.
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let given = match (values.next(), values.next()) {
            (Some(value), None) => value.to_str().ok().and_then(|value| value.strip_prefix("Bearer ")),
            _ => None,
        };
        let digest: Option<[u8; 32]> = given.map(|token| Sha256::digest(token.as_bytes()).into());
        if digest.as_ref() == Some(expected) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized(SEND_THE_TOKEN.into()))
        }
    }
}

/// The admin API of `state`, once the caller has shown the token.
fn admin<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<&'a Arc<AdminApi>, ApiError> {
    let api = state.admin.as_ref().ok_or_else(|| ApiError::Forbidden("the admin API is off".into()))?;
    api.authorize(headers)?;
    Ok(api)
}

/// `GET /v1/admin/plugins`: every loaded plugin with its counters, and refused versions.
pub async fn list_plugins(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    admin(&state, &headers)?;
    let mut rejections = state.registry.rejections();
    let plugins: Vec<Value> = state
        .registry
        .list()
        .into_iter()
        .map(|(name, handle)| {
            let rejected = rejections.remove(&name);
            plugin_view(&name, &handle, rejected.as_ref())
        })
        .collect();
    // Names offered only by broken files: nothing of theirs is running.
    let never_loaded: Vec<Value> = rejections
        .iter()
        .map(|(name, rejection)| json!({ "name": name, "rejected": rejection_view(rejection) }))
        .collect();
    Ok(Json(json!({ "plugins": plugins, "rejected": never_loaded })))
}

fn plugin_view(name: &str, handle: &PluginHandle, rejected: Option<&Rejection>) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    let plugin = handle.current();
    let stats = handle.stats();
    json!({
        "name": name,
        "version": plugin.version(),
        "contract": plugin.contract().as_str(),
        "content_hash": plugin.content_hash(),
        "origin": plugin.origin(),
        "loaded_at": rfc3339(plugin.loaded_at()),
        "calls": stats.calls.load(Relaxed),
        "failures": stats.failed_records.load(Relaxed),
        "batch_errors": stats.batch_errors.load(Relaxed),
        "traps": stats.traps.load(Relaxed),
        "last_error": stats.last_error(),
        "rejected": rejected.map(rejection_view),
        "shadow": handle.shadow().map(|shadow| shadow_view(name, handle, &shadow)),
        "canary": handle.canary().map(|canary| canary_view(name, handle, &canary)),
    })
}

/// A canary rollout: its state, settings, what each version did, and why it was rolled back.
fn canary_view(name: &str, handle: &PluginHandle, canary: &Canary) -> Value {
    let candidate = canary.candidate();
    let current = handle.current();
    let view = canary.view();
    json!({
        "plugin": name,
        "state": view.state,
        "candidate": {
            "version": candidate.version(),
            "content_hash": candidate.content_hash(),
            "origin": candidate.origin(),
            "counts": view.candidate,
        },
        "current": {
            "version": current.version(),
            "content_hash": current.content_hash(),
            "counts": view.current,
        },
        "settings": canary.settings(),
        "since": rfc3339(canary.since()),
        "rollback": view.rollback.map(|rollback| json!({
            "reason": rollback.kind,
            "detail": rollback.reason,
            "at": rfc3339(rollback.at),
        })),
    })
}

/// What a candidate has done against the current version so far.
fn shadow_view(name: &str, handle: &PluginHandle, shadow: &Shadow) -> Value {
    let candidate = shadow.candidate();
    let current = handle.current();
    let counts = shadow.counts();
    let (current_ms, candidate_ms) = counts.mean_ms();
    json!({
        "plugin": name,
        "candidate": {
            "version": candidate.version(),
            "content_hash": candidate.content_hash(),
            "origin": candidate.origin(),
        },
        "current": { "version": current.version(), "content_hash": current.content_hash() },
        "since": rfc3339(shadow.since()),
        "batches": {
            "compared": counts.batches_compared,
            "skipped": counts.batches_skipped,
            "trapped": counts.batches_trapped,
        },
        "rows": {
            "equal": counts.rows_equal,
            "changed": counts.rows_changed,
            "missing": counts.rows_missing,
            "extra": counts.rows_extra,
        },
        "failures": {
            "appeared": counts.failures_appeared,
            "disappeared": counts.failures_disappeared,
            "changed": counts.failures_changed,
            "by_reason": counts.failures_by_reason,
        },
        "ms_per_batch": { "current": current_ms, "candidate": candidate_ms },
        "samples": {
            "kept": counts.samples_kept,
            "limit": MAX_SAMPLES,
            "under": format!("{SHADOW_DIR}/{name}/{}/", candidate.version()),
        },
    })
}

fn rejection_view(rejection: &Rejection) -> Value {
    json!({
        "origin": rejection.origin,
        "content_hash": rejection.content_hash,
        "error": rejection.error,
        "at": rfc3339(rejection.at),
    })
}

fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `PUT /v1/admin/plugins/{name}`: checks the uploaded component as the directory watcher
/// would, swaps it in, and keeps it in the plugins directory for the next start.
pub async fn upload_plugin(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match admin(&state, &headers).and_then(|api| Ok((api.clone(), plugin_name(name)?))) {
        Ok((api, name)) => upload(&api, name, body).await.into_response(),
        Err(error) => refused_before_the_body(error),
    }
}

/// The answer to an upload refused before its body is read (nobody without the token gets a
/// body read): the unread rest means the connection cannot carry another request, and a client
/// not told so fails the next request it sends on it.
fn refused_before_the_body(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// An uploaded component's bytes, refused past the API's upload limit.
async fn read_upload(api: &AdminApi, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = api.max_upload_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::PayloadTooLarge { limit })
}

/// Reads the upload of plugin `name`, offers it to the swapper, and keeps it once swapped in.
async fn upload(api: &AdminApi, name: String, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = read_upload(api, body).await?;
    let _one_upload_at_a_time = api.uploads.lock().await;
    let swapper = api.swapper.clone();
    let offered = tokio::task::spawn_blocking(move || {
        let offered = swapper.offer(&name, &format!("upload of `{name}`"), &bytes)?;
        if let Offered::Swapped { .. } = &offered
            && let Err(error) = persist_component(swapper.dir(), &name, &bytes)
        {
            return Ok((offered, Some(error.to_string())));
        }
        Ok::<_, PluginError>((offered, None))
    })
    .await
    .map_err(|error| ApiError::Internal(format!("the upload check failed: {error}")))?;
    match offered {
        Err(error) => Err(refused_upload(error)),
        Ok((Offered::Swapped { name, version, content_hash, previous }, None)) => Ok(Json(json!({
            "name": name, "version": version, "content_hash": content_hash, "previous_version": previous,
            "swapped": true,
        }))),
        Ok((Offered::Swapped { name, version, .. }, Some(problem))) => Err(ApiError::Internal(format!(
            "`{name}` {version} is running, but it could not be kept in the plugins directory ({problem}); \
             it will be gone after a restart"
        ))),
        Ok((Offered::Unchanged { name, version, content_hash }, _)) => Ok(Json(json!({
            "name": name, "version": version, "content_hash": content_hash, "swapped": false,
        }))),
    }
}

/// `GET /v1/admin/plugins/{name}/shadow`: the candidate shadowing `name` and its counts.
pub async fn shadow_status(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    admin(&state, &headers)?;
    let name = plugin_name(name)?;
    let handle = state.registry.get(&name).ok_or_else(|| no_shadow(&name))?;
    let shadow = handle.shadow().ok_or_else(|| no_shadow(&name))?;
    Ok(Json(shadow_view(&name, &handle, &shadow)))
}

fn no_shadow(name: &str) -> ApiError {
    ApiError::Missing(format!("no candidate shadows plugin `{name}`"))
}

/// `PUT /v1/admin/plugins/{name}/shadow`: checks the uploaded component as a swap would and
/// makes it shadow the current version, kept as `<name>.shadow.wasm` for the next start.
pub async fn upload_shadow(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match admin(&state, &headers).and_then(|api| Ok((api.clone(), plugin_name(name)?))) {
        Ok((api, name)) => upload_candidate(&api, name, body).await.into_response(),
        Err(error) => refused_before_the_body(error),
    }
}

async fn upload_candidate(api: &AdminApi, name: String, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = read_upload(api, body).await?;
    let _one_upload_at_a_time = api.uploads.lock().await;
    let swapper = api.swapper.clone();
    let offered = tokio::task::spawn_blocking(move || {
        let offered = swapper.offer_shadow(&name, &format!("candidate upload of `{name}`"), &bytes)?;
        if let ShadowOffered::Started { .. } = &offered
            && let Err(error) = persist_candidate(swapper.dir(), &name, &bytes)
        {
            return Ok((offered, Some(error.to_string())));
        }
        Ok::<_, PluginError>((offered, None))
    })
    .await
    .map_err(|error| ApiError::Internal(format!("the upload check failed: {error}")))?;
    match offered {
        Err(PluginError::NotLoaded(name)) => {
            Err(ApiError::Missing(format!("plugin `{name}` is not loaded, so nothing can be shadowed")))
        }
        Err(error) => Err(refused_upload(error)),
        Ok((ShadowOffered::Started { name, version, content_hash, current, replaced }, None)) => {
            Ok(Json(json!({
                "name": name, "version": version, "content_hash": content_hash, "current_version": current,
                "replaced_candidate": replaced, "shadowing": true,
            })))
        }
        Ok((ShadowOffered::Started { name, version, .. }, Some(problem))) => {
            Err(ApiError::Internal(format!(
                "`{name}` {version} is shadowing, but it could not be kept in the plugins directory ({problem}); \
             it will be gone after a restart"
            )))
        }
        Ok((ShadowOffered::Unchanged { name, version, content_hash }, _)) => Ok(Json(json!({
            "name": name, "version": version, "content_hash": content_hash, "shadowing": true, "unchanged": true,
        }))),
    }
}

/// `DELETE /v1/admin/plugins/{name}/shadow`: ends the shadow and removes `<name>.shadow.wasm`.
pub async fn discard_shadow(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let api = admin(&state, &headers)?.clone();
    let name = plugin_name(name)?;
    let _one_change_at_a_time = api.uploads.lock().await;
    let discarded = api.swapper.discard_shadow(&name);
    remove_candidate(api.swapper.dir(), &name)
        .map_err(|error| ApiError::Internal(format!("cannot remove the candidate's file: {error}")))?;
    let (version, counts) = discarded.ok_or_else(|| no_shadow(&name))?;
    Ok(Json(json!({ "name": name, "discarded": version, "counts": counts })))
}

/// `POST /v1/admin/plugins/{name}/shadow/promote`: swaps the candidate in as the current
/// version (the same atomic swap as an upload) and ends the shadow; its component becomes
/// `<name>.wasm` in the plugins directory, by rename, and `<name>.shadow.wasm` goes.
pub async fn promote_shadow(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let api = admin(&state, &headers)?.clone();
    let name = plugin_name(name)?;
    let _one_change_at_a_time = api.uploads.lock().await;
    let swapper = api.swapper.clone();
    let promoted = tokio::task::spawn_blocking(move || {
        let Some(promoted) = swapper.promote_shadow(&name)? else { return Ok(Err(name)) };
        let kept = persist_component(swapper.dir(), &promoted.name, &promoted.bytes)
            .and_then(|_| remove_candidate(swapper.dir(), &promoted.name));
        Ok::<_, PluginError>(Ok((promoted, kept.err().map(|error| error.to_string()))))
    })
    .await
    .map_err(|error| ApiError::Internal(format!("the promotion failed: {error}")))?;
    match promoted.map_err(refused_upload)? {
        Err(name) => Err(no_shadow(&name)),
        Ok((promoted, None)) => Ok(Json(json!({
            "name": promoted.name, "version": promoted.version, "content_hash": promoted.content_hash,
            "previous_version": promoted.previous, "swapped": true, "counts": promoted.counts,
        }))),
        Ok((promoted, Some(problem))) => Err(ApiError::Internal(format!(
            "`{}` {} is running, but it could not be kept in the plugins directory ({problem}); \
             it will be gone after a restart",
            promoted.name, promoted.version
        ))),
    }
}

fn no_canary(name: &str) -> ApiError {
    ApiError::Missing(format!("no canary rollout of plugin `{name}`"))
}

/// `GET /v1/admin/plugins/{name}/canary`: the latest canary rollout of `name`, serving or ended
/// (rolled back, with the reason, or promoted).
pub async fn canary_status(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    admin(&state, &headers)?;
    let name = plugin_name(name)?;
    let handle = state.registry.get(&name).ok_or_else(|| no_canary(&name))?;
    let canary = handle.canary().ok_or_else(|| no_canary(&name))?;
    Ok(Json(canary_view(&name, &handle, &canary)))
}

/// Canary settings from an upload's query (`share_percent`, `window_batches`, `min_records`,
/// `max_failure_ratio_margin`, `max_traps`), each over the host's `[plugins.canary]`.
fn canary_settings(query: Option<&str>, defaults: CanarySettings) -> Result<CanarySettings, ApiError> {
    let mut settings = defaults;
    for pair in query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let refuse = || ApiError::BadRequest {
            reason: format!("`{value}` is not a valid {key}"),
            field: Some(key.to_owned()),
        };
        match key {
            "share_percent" => settings.share_percent = value.parse().map_err(|_| refuse())?,
            "window_batches" => settings.window_batches = value.parse().map_err(|_| refuse())?,
            "min_records" => settings.min_records = value.parse().map_err(|_| refuse())?,
            "max_failure_ratio_margin" => {
                settings.max_failure_ratio_margin = value.parse().map_err(|_| refuse())?
            }
            "max_traps" => settings.max_traps = value.parse().map_err(|_| refuse())?,
            _ => {
                return Err(ApiError::BadRequest {
                    reason: format!(
                        "unknown canary setting `{}` (allowed: share_percent, window_batches, min_records, \
                         max_failure_ratio_margin, max_traps)",
                        key.escape_default()
                    ),
                    field: None,
                });
            }
        }
    }
    if let Some(problem) = settings.problem() {
        return Err(ApiError::BadRequest { reason: problem, field: None });
    }
    Ok(settings)
}

/// `PUT /v1/admin/plugins/{name}/canary`: checks the uploaded component as a swap would and
/// makes it serve a share of the traffic, judged by the query's settings over the host's; kept
/// as `<name>.canary.wasm`, which a restart serves again with the host's settings.
pub async fn upload_canary(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let checked = admin(&state, &headers).and_then(|api| {
        let settings = canary_settings(query.as_deref(), api.swapper.canary_defaults())?;
        Ok((api.clone(), plugin_name(name)?, settings))
    });
    match checked {
        Ok((api, name, settings)) => start_canary(&api, name, settings, body).await.into_response(),
        Err(error) => refused_before_the_body(error),
    }
}

async fn start_canary(
    api: &AdminApi,
    name: String,
    settings: CanarySettings,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_upload(api, body).await?;
    let _one_upload_at_a_time = api.uploads.lock().await;
    let swapper = api.swapper.clone();
    let started = tokio::task::spawn_blocking(move || {
        let started = swapper.offer_canary(&name, &format!("canary upload of `{name}`"), &bytes, settings)?;
        let kept = persist_canary(swapper.dir(), &name, &bytes).err().map(|error| error.to_string());
        Ok::<_, PluginError>((started, kept))
    })
    .await
    .map_err(|error| ApiError::Internal(format!("the upload check failed: {error}")))?;
    match started {
        Err(PluginError::NotLoaded(name)) => {
            Err(ApiError::Missing(format!("plugin `{name}` is not loaded, so no canary can serve it")))
        }
        Err(error) => Err(refused_upload(error)),
        Ok((started, None)) => Ok(Json(json!({
            "name": started.name, "version": started.version, "content_hash": started.content_hash,
            "current_version": started.current, "settings": started.settings,
            "replaced_candidate": started.replaced, "serving": true,
        }))),
        Ok((started, Some(problem))) => Err(ApiError::Internal(format!(
            "`{}` {} serves as a canary, but it could not be kept in the plugins directory ({problem}); \
             it will be gone after a restart",
            started.name, started.version
        ))),
    }
}

/// `DELETE /v1/admin/plugins/{name}/canary`: ends the rollout (the current version serves
/// everything) and removes `<name>.canary.wasm`.
pub async fn discard_canary(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let api = admin(&state, &headers)?.clone();
    let name = plugin_name(name)?;
    let _one_change_at_a_time = api.uploads.lock().await;
    let discarded = api.swapper.discard_canary(&name);
    remove_canary(api.swapper.dir(), &name)
        .map_err(|error| ApiError::Internal(format!("cannot remove the canary's file: {error}")))?;
    let (version, view) = discarded.ok_or_else(|| no_canary(&name))?;
    Ok(Json(json!({ "name": name, "discarded": version, "state": view.state, "candidate": view.candidate })))
}

/// `POST /v1/admin/plugins/{name}/canary/promote`: swaps the serving canary's candidate in as
/// the current version (the same atomic swap as an upload); its component becomes `<name>.wasm`
/// in the plugins directory, by rename, and `<name>.canary.wasm` goes.
pub async fn promote_canary(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let api = admin(&state, &headers)?.clone();
    let name = plugin_name(name)?;
    let _one_change_at_a_time = api.uploads.lock().await;
    let swapper = api.swapper.clone();
    let promoted = tokio::task::spawn_blocking(move || {
        let Some(promoted) = swapper.promote_canary(&name)? else { return Ok(Err(name)) };
        let kept = persist_component(swapper.dir(), &promoted.name, &promoted.bytes)
            .and_then(|_| remove_canary(swapper.dir(), &promoted.name));
        Ok::<_, PluginError>(Ok((promoted, kept.err().map(|error| error.to_string()))))
    })
    .await
    .map_err(|error| ApiError::Internal(format!("the promotion failed: {error}")))?;
    match promoted.map_err(refused_upload)? {
        Err(name) => Err(ApiError::Missing(format!("no canary serves plugin `{name}`"))),
        Ok((promoted, None)) => Ok(Json(json!({
            "name": promoted.name, "version": promoted.version, "content_hash": promoted.content_hash,
            "previous_version": promoted.previous, "swapped": true, "candidate": promoted.view.candidate,
            "current": promoted.view.current,
        }))),
        Ok((promoted, Some(problem))) => Err(ApiError::Internal(format!(
            "`{}` {} is running, but it could not be kept in the plugins directory ({problem}); \
             it will be gone after a restart",
            promoted.name, promoted.version
        ))),
    }
}

/// The plugin name of an upload's path, once it is known to be safe as a file name.
///
/// The path is taken as a `Result` so that a name that is not UTF-8 once percent-decoded gets
/// this JSON 400 after the token check, not axum's plain-text one before it.
fn plugin_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let refuse = |reason: String| ApiError::BadRequest { reason, field: Some("name".into()) };
    let Path(name) = path.map_err(|rejection| refuse(rejection.body_text()))?;
    if name.len() > MAX_PLUGIN_NAME_LEN {
        return Err(refuse(format!("a plugin name has at most {MAX_PLUGIN_NAME_LEN} characters")));
    }
    if !is_plain_name(&name) {
        // Escaped, so a NUL, a newline or a look-alike letter shows as `\0`, `\n`, `\u{430}`.
        return Err(refuse(format!(
            "`{}` is not a plugin name: use lowercase ASCII letters, digits and `-`",
            name.escape_default()
        )));
    }
    Ok(name)
}

/// 422 for a component the checks refuse; 500 when the host itself failed to check it.
fn refused_upload(error: PluginError) -> ApiError {
    match error {
        PluginError::Read { .. } | PluginError::Cache { .. } | PluginError::Engine(_) => {
            ApiError::Internal(error.to_string())
        }
        refused => ApiError::Unprocessable(refused.to_string()),
    }
}

/// `POST /v1/admin/pipelines/reload`: reads the pipelines directory again and serves it.
///
/// HTTP and webhook endpoints change at once. Consumers (connectors and job runners) keep the
/// definitions they started with; pipelines of theirs that changed are listed under
/// `restart_required`.
pub async fn reload_pipelines(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let api = admin(&state, &headers)?.clone();
    let registry = state.registry.clone();
    let dir = api.host.pipelines.dir.clone();
    let loaded = tokio::task::spawn_blocking(move || load_pipeline_dir(&dir, &registry))
        .await
        .map_err(|error| ApiError::Internal(format!("the pipeline reload failed: {error}")))?;
    let fresh = loaded.map_err(|errors| {
        let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
        ApiError::Unprocessable(format!("the pipelines were not reloaded: {}", problems.join("; ")))
    })?;
    let old = state.pipelines.load_full();
    let old_endpoints = state.endpoints.load_full();
    // Job endpoints need the job services started with the host; keep them where they were.
    let jobs: StartedJobs = old
        .iter()
        .filter_map(|pipeline| match &pipeline.source {
            SourceConfig::S3Job(source) => old_endpoints
                .get(&source.path)
                .filter(|endpoint| matches!(endpoint.as_ref(), Endpoint::Job(_)))
                .map(|endpoint| (source.path.clone(), endpoint)),
            _ => None,
        })
        .collect();
    let endpoints = Endpoints::build(&fresh, &state.registry, &api.host, &jobs)
        .map_err(|error| ApiError::Unprocessable(format!("the pipelines were not reloaded: {error}")))?;
    let changes = PipelineChanges::between(&old, &fresh);
    state.endpoints.store(Arc::new(endpoints));
    state.pipelines.store(Arc::new(fresh));
    tracing::info!(added = ?changes.added, removed = ?changes.removed, changed = ?changes.changed, "pipelines reloaded");
    Ok(Json(json!({
        "pipelines": state.pipelines.load().iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        "added": changes.added,
        "removed": changes.removed,
        "changed": changes.changed,
        "restart_required": changes.restart_required,
    })))
}

/// Pipeline names that a reload added, removed or changed.
#[derive(Debug, Default, PartialEq, Eq)]
struct PipelineChanges {
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<String>,
    /// Of the above, those a consumer runs, which keeps its old definition until restart.
    restart_required: Vec<String>,
}

impl PipelineChanges {
    fn between(old: &[Pipeline], fresh: &[Pipeline]) -> Self {
        let find = |list: &[Pipeline], name: &str| list.iter().find(|p| p.name == name).cloned();
        let consumed = Pipeline::runs_in_background;
        let mut changes = PipelineChanges::default();
        for pipeline in fresh {
            match find(old, &pipeline.name) {
                None => changes.added.push(pipeline.name.clone()),
                Some(before) if before != *pipeline => {
                    changes.changed.push(pipeline.name.clone());
                    if consumed(&before) || consumed(pipeline) {
                        changes.restart_required.push(pipeline.name.clone());
                    }
                }
                Some(_) => {}
            }
            if find(old, &pipeline.name).is_none() && consumed(pipeline) {
                changes.restart_required.push(pipeline.name.clone());
            }
        }
        for pipeline in old.iter().filter(|p| find(fresh, &p.name).is_none()) {
            changes.removed.push(pipeline.name.clone());
            if consumed(pipeline) {
                changes.restart_required.push(pipeline.name.clone());
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_settings_of_the_query_override_the_hosts() {
        let defaults = CanarySettings::default();
        assert_eq!(canary_settings(None, defaults).ok(), Some(defaults));
        let set =
            canary_settings(Some("share_percent=25&max_traps=1&max_failure_ratio_margin=0.2"), defaults)
                .expect("valid settings");
        assert_eq!((set.share_percent, set.max_traps, set.window_batches), (25, 1, defaults.window_batches));
        assert!((set.max_failure_ratio_margin - 0.2).abs() < f64::EPSILON);
        for refused in
            ["share_percent=101", "share_percent=x", "max_traps=0", "token=abc", "window_batches=-1"]
        {
            assert!(canary_settings(Some(refused), defaults).is_err(), "{refused}");
        }
    }

    fn pipeline(name: &str, source: &str) -> Pipeline {
        let text = format!("name = \"{name}\"\n[source]\n{source}\n");
        toml::from_str(&text).expect("pipeline")
    }

    const HTTP: &str = "kind = \"http\"\npath = \"/a\"";
    const KAFKA: &str = "kind = \"kafka\"\ntopic = \"t\"\ngroup = \"g\"";

    #[test]
    fn consumer_pipelines_that_change_need_a_restart_and_http_ones_do_not() {
        let old = [pipeline("web", HTTP), pipeline("feed", KAFKA), pipeline("gone", KAFKA)];
        let fresh = [
            pipeline("web", "kind = \"http\"\npath = \"/b\""),
            pipeline("feed", "kind = \"kafka\"\ntopic = \"t2\"\ngroup = \"g\""),
            pipeline("new", HTTP),
        ];
        let changes = PipelineChanges::between(&old, &fresh);
        assert_eq!(changes.added, ["new"]);
        assert_eq!(changes.removed, ["gone"]);
        assert_eq!(changes.changed, ["web", "feed"]);
        assert_eq!(changes.restart_required, ["feed", "gone"]);
    }

    #[test]
    fn the_same_definitions_are_no_change() {
        let old = [pipeline("web", HTTP), pipeline("feed", KAFKA)];
        assert_eq!(PipelineChanges::between(&old, &old.clone()), PipelineChanges::default());
    }
}
