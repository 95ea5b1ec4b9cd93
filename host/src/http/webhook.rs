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

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use proptest::sample::select;
    use serde_json::Value;
    use sluice_fuzz::json::json_value;
    use sluice_fuzz::{corrupted, json_ish_bytes};

    use super::*;

    const FORMATS: [BodyFormat; 3] = [BodyFormat::Any, BodyFormat::Json, BodyFormat::JsonArray];

    /// Whether `error` is the 400 `check_format` documents, with the reason it gives.
    fn is_refusal(error: &ApiError) -> bool {
        let ApiError::BadRequest { reason, field: None } = error else { return false };
        ["the body is empty", "the body is not JSON: ", "the body must be a JSON array: "]
            .iter()
            .any(|start| reason.starts_with(start))
    }

    /// A JSON value's text, compact or pretty-printed, with whitespace around it.
    fn json_text() -> impl Strategy<Value = (Value, Vec<u8>)> {
        (json_value(&[]), any::<bool>(), select(vec!["", " ", "\n", "\r\n\t "])).prop_map(
            |(value, pretty, space)| {
                let text = if pretty { format!("{value:#}") } else { value.to_string() };
                let body = format!("{space}{text}{space}").into_bytes();
                (value, body)
            },
        )
    }

    proptest! {
        #![proptest_config(sluice_fuzz::config())]

        #[test]
        fn any_body_is_checked_without_panicking(body in json_ish_bytes(512), format in select(FORMATS.to_vec())) {
            if let Err(error) = check_format(format, &body) {
                prop_assert!(is_refusal(&error), "{error:?} for {body:?}");
            }
        }

        #[test]
        fn any_json_is_accepted_as_json_and_only_an_array_as_an_array((value, body) in json_text()) {
            prop_assert!(check_format(BodyFormat::Json, &body).is_ok());
            prop_assert!(check_format(BodyFormat::Any, &body).is_ok());
            prop_assert_eq!(check_format(BodyFormat::JsonArray, &body).is_ok(), value.is_array());
        }

        #[test]
        fn every_cut_of_a_json_array_is_refused(values in proptest::collection::vec(json_value(&[]), 0..6)) {
            let body = Value::Array(values).to_string().into_bytes();
            for end in 0..body.len() {
                for format in [BodyFormat::Json, BodyFormat::JsonArray] {
                    let refused = check_format(format, &body[..end]);
                    let cut = String::from_utf8_lossy(&body[..end]);
                    prop_assert!(refused.as_ref().is_err_and(is_refusal), "{format:?} {cut:?}: {refused:?}");
                }
            }
        }

        #[test]
        fn a_broken_json_body_is_refused_or_still_of_its_format(
            (broken, how) in json_text().prop_flat_map(|(_, body)| corrupted(body)),
            format in select(FORMATS.to_vec()),
        ) {
            match check_format(format, &broken) {
                Ok(()) if format == BodyFormat::JsonArray => {
                    let text = broken.trim_ascii();
                    prop_assert!(text.starts_with(b"[") && text.ends_with(b"]"), "{how:?} gave {broken:?}");
                }
                Ok(()) => {}
                Err(error) => prop_assert!(is_refusal(&error), "{error:?} after {how:?}"),
            }
        }
    }
}
