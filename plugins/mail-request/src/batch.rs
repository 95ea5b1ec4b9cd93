//! One batch of mail requests in, SendGrid bodies and log rows out, failures beside them.

use sluice_plugin_sdk::{BatchResult, Failure, Outputs, RecordIn};

use crate::mail_id::mail_id_for;
use crate::mail_log::{self, MailLogEntry};
use crate::outputs::OUTPUTS;
use crate::reply::{self, Reply};
use crate::request::{RequestError, parse_mail_request};
use crate::sendgrid::{self, build_sendgrid_mail, check_message_size};
use crate::settings::MailConfig;

/// Turns every record into a `sendgrid_mail`, a `mail_log` and a `reply` row keyed by the mail
/// id, or into a failure naming what is wrong (its field, when the problem is one field).
/// Records are independent: one bad request never stops the others. A record is one mail
/// request, so its failure is always whole.
pub fn transform_batch(batch: &[RecordIn], config: &MailConfig) -> BatchResult {
    let mut outputs = Outputs::new(OUTPUTS);
    for (position, record) in batch.iter().enumerate() {
        // The contract's list length is a u32, so a position always fits.
        let input = u32::try_from(position).unwrap_or(u32::MAX);
        if let Err(failure) = mail_rows(record, input, config, &mut outputs) {
            // The three rows of a request go together or not at all.
            outputs.discard_input(input);
            outputs.fail(failure);
        }
    }
    outputs.finish()
}

/// Appends the three rows of one request; on error the caller drops what was appended.
fn mail_rows(
    record: &RecordIn,
    input: u32,
    config: &MailConfig,
    outputs: &mut Outputs,
) -> Result<(), Failure> {
    let mail_id =
        mail_id_for(record.key.as_deref()).map_err(|error| Failure::whole(input, error.to_string()))?;
    let request = parse_mail_request(&record.value).map_err(|error| error.into_failure(input))?;
    let mail = build_sendgrid_mail(&request, &mail_id, config).map_err(|error| error.into_failure(input))?;
    check_message_size(&mail).map_err(|error| error.into_failure(input))?;
    let key = Some(mail_id.as_bytes());
    // The row types always fit their columns; an error is still the record's failure, not a panic.
    let row_failure = |error: sluice_plugin_sdk::RowError| {
        RequestError::Request(format!("could not write a row: {error}")).into_failure(input)
    };
    outputs.push(sendgrid::OUTPUT, input, key, &mail).map_err(row_failure)?;
    outputs
        .push(mail_log::OUTPUT, input, key, &MailLogEntry::new(&request, &mail_id))
        .map_err(row_failure)?;
    outputs.push(reply::OUTPUT, input, key, &Reply { mail_id: &mail_id }).map_err(row_failure)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use sluice_plugin_sdk::render::{RenderedRow, result_rows};

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

    fn rows_of(result: &BatchResult) -> Vec<RenderedRow> {
        result_rows(&crate::outputs::declared(), result).unwrap()
    }

    #[test]
    fn valid_record_gives_three_rows_keyed_by_mail_id() {
        let result = transform_batch(&[keyed("id-7", valid_request())], &MailConfig::default());
        assert!(result.failures.is_empty());
        let summary: Vec<(String, u32, Option<Vec<u8>>)> =
            rows_of(&result).into_iter().map(|row| (row.output, row.input, row.key)).collect();
        let key = Some(b"id-7".to_vec());
        assert_eq!(
            summary,
            vec![
                ("sendgrid_mail".to_owned(), 0, key.clone()),
                ("mail_log".to_owned(), 0, key.clone()),
                ("reply".to_owned(), 0, key)
            ]
        );
    }

    #[test]
    fn bad_records_fail_alone_naming_the_field() {
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
        let failures: Vec<(u32, Option<&str>, &str)> = result
            .failures
            .iter()
            .map(|failure| (failure.index, failure.field.as_deref(), failure.reason.as_str()))
            .collect();
        assert_eq!(
            failures,
            vec![
                (0, Some("to"), "not a valid email address: no @"),
                (2, None, "record key is not UTF-8, so it cannot be used as the mail id")
            ]
        );
        assert!(result.failures.iter().all(|failure| failure.part.is_none()), "a request fails whole");
        let rows = rows_of(&result);
        assert_eq!(rows.len(), 3, "the good request gives its three rows");
        assert!(rows.iter().all(|row| row.input == 1));
    }

    #[test]
    fn record_without_key_gets_a_generated_mail_id() {
        let record = RecordIn::from_value(valid_request().to_string());
        let result = transform_batch(&[record], &MailConfig::default());
        let Some(mail) = rows_of(&result).into_iter().next() else {
            panic!("expected a row, got {:?}", result.failures);
        };
        let mail_id = String::from_utf8(mail.key.clone().unwrap_or_default()).unwrap_or_default();
        assert_eq!(mail_id.len(), 36);
        assert_eq!(mail.value()["custom_args"]["mail_id"], json!(mail_id));
    }
}
