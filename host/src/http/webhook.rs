//! Webhook sources: verify, check the shape, store the raw body in Kafka, then answer 200.
//!
//! The answer waits for the broker's acknowledgement (`acks=all`), so a 2xx always means the
//! body is stored; any failure answers 503 and the sender retries.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::http::HeaderMap;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::ApiError;
use super::body::read_body;
use super::signature::SignatureVerifier;
use crate::config::BodyFormat;
use crate::kafka::DurableProducer;

/// One webhook pipeline's endpoint.
pub struct WebhookEndpoint {
    pub pipeline: String,
    pub topic: String,
    pub body_limit: usize,
    pub body_format: BodyFormat,
    pub verifier: Option<SignatureVerifier>,
    pub producer: DurableProducer,
}

impl WebhookEndpoint {
    /// Handles one delivery.
    ///
    /// # Errors
    /// 401 for a missing, bad or stale signature; 413 over the body limit; 400 for an empty
    /// body or one of the wrong shape; 503 when Kafka did not confirm the write.
    pub async fn handle(&self, headers: &HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
        let body = read_body(headers, body, self.body_limit).await?;
        if let Some(verifier) = &self.verifier {
            verifier.verify(headers, &body).map_err(|e| ApiError::Unauthorized(e.to_string()))?;
        }
        check_format(self.body_format, &body)?;
        let stored = self.producer.send(&self.topic, None, &body).await.map_err(|error| {
            tracing::warn!(pipeline = %self.pipeline, "webhook body not stored: {error}");
            ApiError::Unavailable {
                reason: "the body could not be stored; retry later".into(),
                retry_after: Some(Duration::from_secs(5)),
            }
        })?;
        Ok(Json(json!({ "stored": true, "partition": stored.partition, "offset": stored.offset })))
    }
}

fn check_format(format: BodyFormat, body: &[u8]) -> Result<(), ApiError> {
    let bad = |reason: String| ApiError::BadRequest { reason, field: None };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("the body is empty".into()));
    }
    match format {
        BodyFormat::Any => Ok(()),
        BodyFormat::Json => {
            serde_json::from_slice::<IgnoredAny>(body)
                .map_err(|e| bad(format!("the body is not JSON: {e}")))?;
            Ok(())
        }
        BodyFormat::JsonArray => {
            serde_json::from_slice::<Vec<IgnoredAny>>(body)
                .map_err(|e| bad(format!("the body must be a JSON array: {e}")))?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_formats_are_checked() {
        assert!(check_format(BodyFormat::JsonArray, b"[{\"a\":1}]").is_ok());
        assert!(check_format(BodyFormat::JsonArray, b"{\"a\":1}").is_err());
        assert!(check_format(BodyFormat::JsonArray, b"[1,").is_err());
        assert!(check_format(BodyFormat::Json, b"3").is_ok());
        assert!(check_format(BodyFormat::Any, b"  \n").is_err());
        assert!(check_format(BodyFormat::Any, b"x").is_ok());
    }
}
