//! The one place errors become HTTP statuses and JSON bodies.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answer: a status and a JSON body `{error, reason, field?}` naming the problem.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{reason}")]
    BadRequest { reason: String, field: Option<String> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("no route for {0}")]
    NotFound(String),
    #[error("{method} is not allowed here; use {allowed}")]
    MethodNotAllowed { method: String, allowed: &'static str },
    #[error("there is no job `{0}`")]
    UnknownJob(String),
    /// The route exists, but not the thing it names (a candidate that is not shadowing).
    #[error("{0}")]
    Missing(String),
    #[error("the body is larger than the {limit} bytes allowed")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but refused: a plugin that fails its checks, pipelines that do not validate.
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Internal(String),
    #[error("{reason}")]
    BadGateway { reason: String, upstream_status: u16, upstream_errors: Value },
    #[error("{reason}")]
    Unavailable { reason: String, retry_after: Option<Duration> },
}

impl ApiError {
    /// A 503 without a retry hint.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        ApiError::Unavailable { reason: reason.into(), retry_after: None }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnknownJob(_) | ApiError::Missing(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::UnknownJob(_) | ApiError::Missing(_) => "not_found",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::Internal(_) => "internal",
            ApiError::BadGateway { .. } => "upstream_refused",
            ApiError::Unavailable { .. } => "unavailable",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code(), "reason": self.to_string() });
        match &self {
            ApiError::BadRequest { field: Some(field), .. } => body["field"] = json!(field),
            ApiError::BadGateway { upstream_status, upstream_errors, .. } => {
                body["upstream_status"] = json!(upstream_status);
                body["upstream_errors"] = upstream_errors.clone();
            }
            _ => {}
        }
        let mut response = (self.status(), Json(body)).into_response();
        // The rest of an oversized body is never read, so the connection cannot carry another
        // request; saying so keeps clients from reusing it and failing their next request.
        if let ApiError::PayloadTooLarge { .. } = &self {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let ApiError::Unavailable { retry_after: Some(wait), .. } = &self
            && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
