//! One batch of mail requests in, SendGrid bodies and log rows out, failures beside them.

use sluice_plugin_sdk::{BatchResult, Failure, OutputInfo, RecordIn, RecordOut};
use thiserror::Error;

use crate::config::MailConfig;
use crate::mail_id::{MailIdError, mail_id_for};
use crate::mail_log::{self, MailLogEntry};
use crate::reply::{self, Reply};
use crate::request::{RequestError, parse_mail_request};
use crate::sendgrid::{self, build_sendgrid_mail, encode_sendgrid_mail};

/// The outputs this plugin declares, with their schemas.
pub fn declared_outputs() -> Vec<OutputInfo> {
    vec![
        OutputInfo::new(sendgrid::OUTPUT, sendgrid::COLUMNS),
        OutputInfo::new(mail_log::OUTPUT, mail_log::COLUMNS),
        OutputInfo::new(reply::OUTPUT, reply::COLUMNS),
    ]
}

/// Why one record produced no mail.
#[derive(Debug, Error)]
enum RecordError {
    #[error(transparent)]
    MailId(#[from] MailIdError),
    #[error(transparent)]
    Request(#[from] RequestError),
}

/// Turns every record into a `sendgrid_mail`, a `mail_log` and a `reply` record keyed by the
/// mail id, or
/// into a failure naming what is wrong. Records are independent: one bad request never stops
/// the others. A record is one mail request, so its failure is always whole.
pub fn transform_batch(batch: &[RecordIn], config: &MailConfig) -> BatchResult {
    let mut result = BatchResult { records: Vec::with_capacity(batch.len() * 2), failures: Vec::new() };
    for (position, record) in batch.iter().enumerate() {
        // The contract's list length is a u32, so a position always fits.
        let input = u32::try_from(position).unwrap_or(u32::MAX);
        match mail_records(record, input, config) {
            Ok(records) => result.records.extend(records),
            Err(error) => result.failures.push(Failure::whole(input, error.to_string())),
        }
    }
    result
}

fn mail_records(record: &RecordIn, input: u32, config: &MailConfig) -> Result<[RecordOut; 3], RecordError> {
    let mail_id = mail_id_for(record.key.as_deref())?;
    let request = parse_mail_request(&record.value)?;
    let mail = encode_sendgrid_mail(&build_sendgrid_mail(&request, &mail_id, config)?)?;
    let log = serde_json::to_vec(&MailLogEntry::new(&request, &mail_id))
        .map_err(|error| RequestError::Request(format!("could not encode the mail log entry: {error}")))?;
    let answer = serde_json::to_vec(&Reply { mail_id: &mail_id })
        .map_err(|error| RequestError::Request(format!("could not encode the reply: {error}")))?;
    let key = Some(mail_id.into_bytes());
    Ok([
        RecordOut { output: sendgrid::OUTPUT.to_owned(), input, key: key.clone(), value: mail },
        RecordOut { output: mail_log::OUTPUT.to_owned(), input, key: key.clone(), value: log },
        RecordOut { output: reply::OUTPUT.to_owned(), input, key, value: answer },
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn keyed(key: &str, value: Value) -> RecordIn {
        RecordIn {
            key: Some(key.as_bytes().to_vec()),
            value: value.to_string().into_bytes(),
            headers: Vec::new(),
        }
    }

    fn valid_request() -> Value {
        json!({"from": "a@example.com", "to": "b@example.com", "subject": "Hi", "text": "x"})
    }

    #[test]
    fn valid_record_gives_both_outputs_keyed_by_mail_id() {
        let result = transform_batch(&[keyed("id-7", valid_request())], &MailConfig::default());
        assert!(result.failures.is_empty());
        let summary: Vec<(&str, u32, Option<&[u8]>)> = result
            .records
            .iter()
            .map(|record| (record.output.as_str(), record.input, record.key.as_deref()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("sendgrid_mail", 0, Some(&b"id-7"[..])),
                ("mail_log", 0, Some(&b"id-7"[..])),
                ("reply", 0, Some(&b"id-7"[..]))
            ]
        );
    }

    #[test]
    fn bad_records_fail_alone() {
        let batch = [
            keyed("id-1", json!({"from": "a@example.com", "to": "nobody", "subject": "Hi", "text": "x"})),
            keyed("id-2", valid_request()),
            RecordIn {
                key: Some(vec![0xff]),
                value: valid_request().to_string().into_bytes(),
                headers: Vec::new(),
            },
        ];
        let result = transform_batch(&batch, &MailConfig::default());
        let failures: Vec<(u32, &str)> =
            result.failures.iter().map(|failure| (failure.index, failure.reason.as_str())).collect();
        assert_eq!(
            failures,
            vec![
                (0, "to: not a valid email address: no @"),
                (2, "record key is not UTF-8, so it cannot be used as the mail id")
            ]
        );
        assert!(result.failures.iter().all(|failure| failure.part.is_none()), "a request fails whole");
        assert_eq!(result.records.len(), 3, "the good request gives its three records");
        assert!(result.records.iter().all(|record| record.input == 1));
    }

    #[test]
    fn record_without_key_gets_a_generated_mail_id() {
        let record = RecordIn::from_value(valid_request().to_string());
        let result = transform_batch(&[record], &MailConfig::default());
        let Some(mail) = result.records.first() else {
            panic!("expected a record, got {:?}", result.failures);
        };
        let mail_id = String::from_utf8(mail.key.clone().unwrap_or_default()).unwrap_or_default();
        assert_eq!(mail_id.len(), 36);
        let body: Value = serde_json::from_slice(&mail.value).unwrap_or_default();
        assert_eq!(body["custom_args"]["mail_id"], json!(mail_id));
    }

    #[test]
    fn declared_schemas_are_json_with_fields() {
        for output in declared_outputs() {
            let schema: Value = serde_json::from_str(&output.schema).unwrap_or_default();
            assert!(schema["fields"].is_array(), "{}", output.name);
        }
    }
}
