//! The job endpoints: `GET` (query string, the original system's API: 200) or `POST` (JSON
//! body: 202) on an `s3-job` pipeline's path asks for a load and answers with the job;
//! `GET /v1/jobs/{id}` reports the job.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ApiError, AppState, endpoints};
use crate::job::{
    JobPipeline, JobQueue, JobRecord, JobRequest, JobState, RequestError, Submission, SubmitError,
};

/// The largest request body: two names.
const BODY_LIMIT: usize = 64 << 10;
/// How long a job may stay `queued` before asking for its object again puts it on the job
/// topic anew: long enough that a busy topic is not flooded with repeats, short enough that
/// a job whose host stopped before queueing it is not stuck.
const REQUEUE_WAITING_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// An `s3-job` pipeline's request endpoint.
pub struct JobEndpoint {
    pub pipeline: Arc<JobPipeline>,
    pub queue: JobQueue,
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::Storage(_) => ApiError::unavailable(error.to_string()),
            client => {
                ApiError::BadRequest { field: client.field().map(str::to_owned), reason: client.to_string() }
            }
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Request(request) => request.into(),
            SubmitError::Store(store) => {
                ApiError::unavailable(format!("the job store is unavailable: {store}"))
            }
        }
    }
}

impl JobEndpoint {
    /// Checks the request, finds or creates the job, and queues it when it is new, failed
    /// before, or has waited in `queued` for a while (a host may have stopped between creating
    /// and queueing it; a second message for a job is harmless).
    ///
    /// The `GET` form answers 200, as the original API (API Gateway + Lambda) did for a key
    /// it found, so its clients switch without a change; `POST` answers 202 Accepted.
    ///
    /// # Errors
    /// 400 for a request to fix (with the field), 413 for a large body, 503 when S3, the job
    /// store or Kafka cannot be reached.
    pub async fn handle(&self, method: &Method, uri: &Uri, body: Body) -> Result<Response, ApiError> {
        let (request, status) = match *method {
            Method::GET => (request_from_query(uri)?, StatusCode::OK),
            Method::POST => (request_from_body(body).await?, StatusCode::ACCEPTED),
            _ => {
                return Err(ApiError::MethodNotAllowed {
                    method: method.to_string(),
                    allowed: "POST or GET",
                });
            }
        };
        let Submission { job, created } = self.pipeline.submit(&request).await?;
        let store = self.pipeline.store();
        let (job, queue_it) = if created {
            (job, true)
        } else if job.state == JobState::Failed {
            match store.requeue_failed(job.id).await.map_err(SubmitError::from)? {
                Some(requeued) => (requeued, true),
                None => (job, false),
            }
        } else if job.state == JobState::Queued {
            match store.requeue_waiting(job.id, REQUEUE_WAITING_AFTER).await.map_err(SubmitError::from)? {
                Some(requeued) => (requeued, true),
                None => (job, false),
            }
        } else {
            (job, false)
        };
        if queue_it && let Err(error) = self.queue.enqueue(&job).await {
            let reason = format!("the job could not be queued: {error}");
            if let Err(store_error) = store.record_queueing_failure(job.id, &reason).await {
                tracing::error!(job = %job.id, "{reason}; recording that failed too: {store_error}");
            }
            return Err(ApiError::unavailable(reason));
        }
        tracing::info!(pipeline = %self.pipeline.name(), job = %job.id, created, queued = queue_it, "job requested");
        let body = json!({
            "job_id": job.id,
            "state": job.state,
            "duplicate": !created,
            "status_url": format!("/v1/jobs/{}", job.id),
            "message": format!(
                "File {} found in the bucket {}. Job status: {}",
                job.object.key,
                job.object.bucket,
                job.state.as_str().to_uppercase()
            ),
        });
        Ok((status, Json(body)).into_response())
    }
}

fn request_from_query(uri: &Uri) -> Result<JobRequest, ApiError> {
    let Query(query) = Query::<HashMap<String, String>>::try_from_uri(uri).map_err(|error| {
        ApiError::BadRequest { reason: format!("the query string cannot be read: {error}"), field: None }
    })?;
    let value = |name: &str| query.get(name).map(|text| Value::String(text.clone()));
    Ok(JobRequest::from_values(value("bucket").as_ref(), value("key").as_ref())?)
}

async fn request_from_body(body: Body) -> Result<JobRequest, ApiError> {
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit: BODY_LIMIT })?;
    let object: serde_json::Map<String, Value> = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        serde_json::from_slice(&bytes).map_err(|error| ApiError::BadRequest {
            reason: format!("the body must be a JSON object {{\"bucket\": …, \"key\": …}}: {error}"),
            field: None,
        })?
    };
    Ok(JobRequest::from_values(object.get("bucket"), object.get("key"))?)
}

/// `GET /v1/jobs/{id}`. A pipeline serving the same path (say `/v1/jobs/orders`) takes
/// precedence, so pipeline paths under `/v1/jobs/` keep working.
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if state.endpoints.load().get(uri.path()).is_some() {
        return endpoints::dispatch(State(state), method, uri, headers, body).await;
    }
    if method != Method::GET {
        return ApiError::MethodNotAllowed { method: method.to_string(), allowed: "GET" }.into_response();
    }
    let Some(store) = state.jobs.as_ref() else { return ApiError::UnknownJob(id).into_response() };
    let Ok(uuid) = Uuid::parse_str(&id) else { return ApiError::UnknownJob(id).into_response() };
    match store.get(uuid).await {
        Ok(Some(job)) => Json(job_view(&job)).into_response(),
        Ok(None) => ApiError::UnknownJob(id).into_response(),
        Err(error) => ApiError::unavailable(format!("the job store is unavailable: {error}")).into_response(),
    }
}

/// The job as the status endpoint shows it.
pub fn job_view(job: &JobRecord) -> Value {
    let duration_ms = match (job.started_at, job.finished_at) {
        (Some(started), Some(finished)) => Some((finished - started).num_milliseconds()),
        _ => None,
    };
    json!({
        "job_id": job.id,
        "pipeline": job.pipeline,
        "bucket": job.object.bucket,
        "key": job.object.key,
        "etag": job.object.etag,
        "size_bytes": job.object.size,
        "state": job.state,
        "attempts": job.attempts,
        "counts": job.counts,
        "failures": job.failures,
        "dead_letters": job.dead_letter_location,
        "error": job.error,
        "created_at": job.created_at.to_rfc3339(),
        "queued_at": job.queued_at.to_rfc3339(),
        "started_at": job.started_at.map(|t| t.to_rfc3339()),
        "finished_at": job.finished_at.map(|t| t.to_rfc3339()),
        "duration_ms": duration_ms,
    })
}
