//! HTTP sources answered in the same request: run the chain on the body, hand the outputs to
//! the sinks, answer with the plugin's reply record and what the sinks report. The host names
//! no field of the answer: the reply output and each sink's `reply_field` do.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::ApiError;
use super::body::read_body;
use crate::kafka::DurableProducer;
use crate::pipeline::{Chain, ChainFailure, ChainOutput};
use crate::plugin::RecordIn;
use crate::sink::kafka::KafkaValue;
use crate::sink::sendgrid::{SendError, SendgridClient};

/// Where one output of a request/reply pipeline goes.
pub enum ReplySink {
    /// Each record is a SendGrid v3 body; the message id SendGrid gives it is answered under
    /// `reply_field`, when there is one.
    Sendgrid { output: String, client: Result<SendgridClient, String>, reply_field: Option<String> },
    /// Each record (with `value = "record"`: the request's body, once, when the output has a
    /// row) is produced to a topic after the answering sinks succeeded.
    Kafka { output: String, topic: String, value: KafkaValue, producer: DurableProducer },
}

/// One request/reply pipeline's endpoint.
pub struct RequestReplyEndpoint {
    pub pipeline: String,
    pub body_limit: usize,
    pub chain: Chain,
    /// `<plugin>.<output>` whose record is the answer's body.
    pub reply: Option<String>,
    pub sinks: Vec<ReplySink>,
}

impl RequestReplyEndpoint {
    /// Handles one request. The request gets a fresh id, passed to the first step as the
    /// record key, so plugins can stamp their outputs with it.
    ///
    /// # Errors
    /// 400 naming the field when a plugin rejects the request; 500 when a plugin trapped;
    /// 502/503 when a sink's upstream refused or was unavailable.
    pub async fn handle(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<(StatusCode, Json<Value>), ApiError> {
        let body = read_body(headers, body, self.body_limit).await?;
        let record =
            RecordIn { key: Some(request_id().into_bytes()), value: body.to_vec(), headers: Vec::new() };
        // A canary of a step's plugin serves its share of the requests.
        let output = self.chain.run_request(Arc::from([record])).await;
        // A failed part fails the request too: it is one mail, sent whole or not at all.
        if let Some(failure) = output.failures.first() {
            return Err(rejection(failure));
        }

        let mut answer = self.reply_body(&output)?;
        for sink in &self.sinks {
            if let ReplySink::Sendgrid { output: name, client, reply_field } = sink {
                let client = client.as_ref().map_err(|reason| ApiError::unavailable(reason.clone()))?;
                for record in output.outputs.get(name).into_iter().flatten() {
                    let message_id = client.send(&record.row.json()).await.map_err(send_error)?;
                    if let Some(field) = reply_field {
                        answer.insert(field.clone(), json!(message_id));
                    }
                }
            }
        }
        for sink in &self.sinks {
            if let ReplySink::Kafka { output: name, topic, value, producer } = sink {
                let rows = output.outputs.get(name).map_or(&[][..], Vec::as_slice);
                let produced: Vec<(Option<&[u8]>, Vec<u8>)> = match value {
                    KafkaValue::Row => rows.iter().map(|record| (record.key(), record.row.json())).collect(),
                    KafkaValue::Record if rows.is_empty() => Vec::new(),
                    KafkaValue::Record => vec![(None, body.to_vec())],
                };
                for (key, payload) in produced {
                    if let Err(error) = producer.send(topic, key, &payload).await {
                        // The answering sink already acted (a mail was sent); failing the request
                        // now would make the caller send it twice.
                        tracing::error!(pipeline = %self.pipeline, topic, "record not logged to Kafka: {error}");
                        answer["logged"] = json!(false);
                    }
                }
            }
        }
        Ok((StatusCode::ACCEPTED, Json(Value::Object(answer))))
    }

    /// The reply output's row as the answer's fields; none without a reply output.
    ///
    /// # Errors
    /// 500 when the row does not read back as one JSON object (a `json` column holding text
    /// that is not JSON): the plugin broke its contract.
    fn reply_body(&self, output: &ChainOutput) -> Result<Map<String, Value>, ApiError> {
        let Some(name) = &self.reply else { return Ok(Map::new()) };
        let Some(record) = output.outputs.get(name).and_then(|records| records.first()) else {
            return Ok(Map::new());
        };
        match serde_json::from_slice(&record.row.json()) {
            Ok(Value::Object(fields)) => Ok(fields),
            _ => Err(ApiError::Internal(format!(
                "{} gave a reply that is not a JSON object",
                record.plugin_version
            ))),
        }
    }
}

/// A plugin's rejection as 400 (naming the field the plugin named), or a trap as 500.
fn rejection(failure: &ChainFailure) -> ApiError {
    if failure.trapped {
        return ApiError::Internal(format!("plugin {} failed: {}", failure.plugin_version, failure.reason));
    }
    ApiError::BadRequest { reason: failure.reason.clone(), field: failure.field.clone() }
}

fn send_error(error: SendError) -> ApiError {
    match error {
        SendError::Refused { status, errors } => ApiError::BadGateway {
            reason: format!("SendGrid refused the mail with {status}"),
            upstream_status: status,
            upstream_errors: errors,
        },
        SendError::Exhausted { retry_after, .. } => ApiError::Unavailable {
            reason: "SendGrid is unavailable; retry later".into(),
            retry_after: Some(retry_after),
        },
        SendError::MissingKey(env) => ApiError::unavailable(format!("{env} is not set")),
    }
}

/// A random UUID v4 text, the id of one request.
fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn failure(field: Option<&str>, reason: &str, trapped: bool) -> ChainFailure {
        ChainFailure {
            field: field.map(str::to_owned),
            source_index: 0,
            step: "p".into(),
            reason: reason.into(),
            trapped,
            plugin_version: Arc::from("p@1"),
            part: None,
        }
    }

    #[test]
    fn a_rejection_names_the_field_the_plugin_named() {
        let named = failure(Some("recipients[2]"), "recipients[2]: not a valid email address", false);
        match rejection(&named) {
            ApiError::BadRequest { field, reason } => {
                assert_eq!(field.as_deref(), Some("recipients[2]"));
                assert_eq!(reason, "recipients[2]: not a valid email address");
            }
            other => panic!("{other:?}"),
        }
        match rejection(&failure(None, "the body is not JSON: eof", false)) {
            ApiError::BadRequest { field, .. } => assert_eq!(field, None),
            other => panic!("{other:?}"),
        }
        assert!(matches!(rejection(&failure(None, "trap", true)), ApiError::Internal(_)));
    }

    #[test]
    fn request_ids_are_uuid_v4_and_distinct() {
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
