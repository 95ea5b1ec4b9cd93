//! One batch of webhook bodies in, deduplicated event rows out, failures beside them.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::value::RawValue;
use sluice_plugin_sdk::json::single_element_array;
use sluice_plugin_sdk::{BatchResult, Failure, OutputInfo, RecordIn, RecordOut};
use thiserror::Error;

use crate::event;
use crate::normalize::{ElementError, normalize_event};

/// The outputs this plugin declares, with their schemas.
pub fn declared_outputs() -> Vec<OutputInfo> {
    vec![OutputInfo::new(event::OUTPUT, event::COLUMNS)]
}

/// Why a whole record (one webhook body) was not read.
#[derive(Debug, Error)]
enum BodyError {
    #[error("value is not UTF-8 text: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error("value is not a JSON array of SendGrid events: {0}")]
    NotAnArray(#[from] serde_json::Error),
}

/// Normalizes every event of every body in the batch.
///
/// A body that is not a JSON array fails as a whole; a bad event fails alone (reason
/// `[element].field: problem`) and the rest of its body still goes through. The failure of a
/// bad event carries that event as its part, `[<event's raw text>]`: the host dead-letters
/// only that event, so re-running the dead letter cannot emit the body's good events twice,
/// and the event's text is kept byte for byte for the `raw` column. SendGrid retries
/// deliveries, so an `sg_event_id` seen earlier in the batch is skipped: the first one wins.
/// Rows are keyed by `sg_event_id`.
pub fn transform_batch(batch: &[RecordIn]) -> BatchResult {
    let mut result = BatchResult { records: Vec::new(), failures: Vec::new() };
    let mut seen_event_ids = HashSet::new();
    for (position, record) in batch.iter().enumerate() {
        // The contract's list length is a u32, so a position always fits.
        let input = u32::try_from(position).unwrap_or(u32::MAX);
        let events = match parse_body(&record.value) {
            Ok(events) => events,
            Err(error) => {
                result.failures.push(Failure::whole(input, error.to_string()));
                continue;
            }
        };
        for (element, raw) in events.into_iter().enumerate() {
            match normalized_record(raw, element, input, &mut seen_event_ids) {
                Ok(Some(row)) => result.records.push(row),
                Ok(None) => {}
                Err(error) => {
                    result.failures.push(Failure::part(input, error.to_string(), single_element_array(raw)));
                }
            }
        }
    }
    result
}

fn parse_body(value: &[u8]) -> Result<Vec<&RawValue>, BodyError> {
    Ok(serde_json::from_str(std::str::from_utf8(value)?)?)
}

/// The row for one event, or `None` when its `sg_event_id` was already emitted.
fn normalized_record<'a>(
    raw: &'a RawValue,
    element: usize,
    input: u32,
    seen_event_ids: &mut HashSet<Cow<'a, str>>,
) -> Result<Option<RecordOut>, ElementError> {
    let event = normalize_event(raw, element)?;
    if seen_event_ids.contains(&event.sg_event_id) {
        return Ok(None);
    }
    // Rows are about twice the event's size once every column is spelt out.
    let mut value = Vec::with_capacity(raw.get().len() * 2 + 512);
    serde_json::to_writer(&mut value, &event).map_err(|error| ElementError {
        element,
        field: None,
        problem: format!("could not encode the row: {error}"),
    })?;
    let key = Some(event.sg_event_id.as_bytes().to_vec());
    seen_event_ids.insert(event.sg_event_id);
    Ok(Some(RecordOut { output: event::OUTPUT.to_owned(), input, key, value }))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use sluice_plugin_sdk::schema::top_level_keys;

    use super::*;

    fn event(id: &str, event_type: &str) -> Value {
        json!({"email": "ann@example.com", "timestamp": 1_513_299_569, "event": event_type, "sg_event_id": id})
    }

    fn body(events: Value) -> RecordIn {
        RecordIn::from_value(events.to_string())
    }

    fn failures(result: &BatchResult) -> Vec<(u32, &str)> {
        result.failures.iter().map(|failure| (failure.index, failure.reason.as_str())).collect()
    }

    fn parts(result: &BatchResult) -> Vec<Option<String>> {
        let text = |part: &Vec<u8>| String::from_utf8_lossy(part).into_owned();
        result.failures.iter().map(|failure| failure.part.as_ref().map(text)).collect()
    }

    fn emitted_ids(result: &BatchResult) -> Vec<(u32, String)> {
        result
            .records
            .iter()
            .map(|record| {
                let key = String::from_utf8_lossy(record.key.as_deref().unwrap_or_default());
                (record.input, key.into_owned())
            })
            .collect()
    }

    #[test]
    fn every_event_of_every_body_becomes_a_row() {
        let result = transform_batch(&[
            body(json!([event("a", "processed"), event("b", "delivered")])),
            body(json!([event("c", "open")])),
        ]);
        assert!(result.failures.is_empty());
        assert_eq!(emitted_ids(&result), vec![(0, "a".to_owned()), (0, "b".to_owned()), (1, "c".to_owned())]);
        assert!(result.records.iter().all(|record| record.output == "events"));
    }

    #[test]
    fn repeated_event_ids_are_emitted_once_across_the_batch() {
        let result = transform_batch(&[
            body(json!([event("a", "processed"), event("a", "processed")])),
            body(json!([event("b", "open"), event("a", "delivered")])),
        ]);
        assert!(result.failures.is_empty());
        assert_eq!(emitted_ids(&result), vec![(0, "a".to_owned()), (1, "b".to_owned())]);
    }

    #[test]
    fn an_invalid_event_does_not_claim_its_id() {
        let mut broken = event("a", "processed");
        broken["timestamp"] = json!("soon");
        let result = transform_batch(&[body(json!([broken, event("a", "delivered")]))]);
        assert_eq!(emitted_ids(&result), vec![(0, "a".to_owned())]);
        assert_eq!(result.failures.len(), 1);
    }

    #[test]
    fn bad_events_fail_alone_and_name_their_position() {
        let mut no_id = event("x", "open");
        no_id.as_object_mut().map(|fields| fields.remove("sg_event_id"));
        let result = transform_batch(&[
            body(json!([event("a", "open")])),
            body(json!([event("b", "open"), 42, no_id, event("c", "click")])),
        ]);
        assert_eq!(failures(&result), vec![(1, "[1]: not a JSON object"), (1, "[2].sg_event_id: required")]);
        assert_eq!(emitted_ids(&result), vec![(0, "a".to_owned()), (1, "b".to_owned()), (1, "c".to_owned())]);
    }

    #[test]
    fn a_bad_event_fails_as_a_part_holding_its_raw_text_exactly() {
        let text = concat!(
            r#"[{"email":"ann@example.com","timestamp":1513299569,"event":"open","sg_event_id":"a"},"#,
            "\n  42 ,\t",
            r#"{ "email": "bo@example.com",  "timestamp": "soon", "event": "open", "sg_event_id": "b\u00e9" },"#,
            r#"{"email":"cy@example.com","timestamp":1513299569,"event":"click","sg_event_id":"c"}]"#
        );
        let result = transform_batch(&[RecordIn::from_value(text)]);
        assert_eq!(emitted_ids(&result), vec![(0, "a".to_owned()), (0, "c".to_owned())]);
        assert_eq!(failures(&result).iter().map(|(index, _)| *index).collect::<Vec<_>>(), vec![0, 0]);
        assert_eq!(
            parts(&result),
            vec![
                Some("[42]".to_owned()),
                Some(
                    r#"[{ "email": "bo@example.com",  "timestamp": "soon", "event": "open", "sg_event_id": "b\u00e9" }]"#
                        .to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_part_rerun_alone_fails_the_same_way_and_emits_nothing_else() {
        let mut broken = event("b", "open");
        broken["timestamp"] = json!("soon");
        let first = transform_batch(&[body(json!([event("a", "open"), broken]))]);
        let Some(part) = first.failures.first().and_then(|failure| failure.part.clone()) else {
            panic!("expected a part failure, got {:?}", first.failures);
        };
        let rerun = transform_batch(&[RecordIn::from_value(part.clone())]);
        assert!(rerun.records.is_empty(), "the good event of the body must not come back");
        assert_eq!(
            failures(&rerun),
            vec![(0, "[0].timestamp: must be a number (unix seconds), not a string or other value")]
        );
        assert_eq!(parts(&rerun), vec![Some(String::from_utf8_lossy(&part).into_owned())]);
    }

    #[test]
    fn a_body_that_is_not_an_array_fails_whole() {
        let result = transform_batch(&[
            body(event("a", "open")),
            RecordIn::from_value(&b"[{\"email\""[..]),
            RecordIn::from_value(vec![0xff, 0xfe]),
            body(json!([])),
        ]);
        let failures = failures(&result);
        assert_eq!(failures.iter().map(|(index, _)| *index).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(failures[0].1.starts_with(
            "value is not a JSON array of SendGrid events: invalid type: map, expected a sequence"
        ));
        assert!(failures[1].1.starts_with("value is not a JSON array of SendGrid events: "));
        assert!(failures[2].1.starts_with("value is not UTF-8 text: "));
        assert_eq!(parts(&result), vec![None, None, None], "a body that is no array fails whole");
        assert!(result.records.is_empty());
    }

    #[test]
    fn json_columns_keep_the_original_text_without_spacing() {
        let text = r#"[ {"sg_event_id":"a", "email":"ann@example.com","event":"open",
            "timestamp":1.5e9, "pool": {"id": 1.50}, "note": "two  spaces"} ]"#;
        let result = transform_batch(&[RecordIn::from_value(text)]);
        let Some(row) = result.records.first() else {
            panic!("expected a row, got {:?}", result.failures);
        };
        let row_text = String::from_utf8_lossy(&row.value);
        assert!(row_text.contains(r#""pool":{"id":1.50}"#), "{row_text}");
        assert!(
            row_text.ends_with(
                r#""custom_args":{"note":"two  spaces"},"raw":{"sg_event_id":"a","email":"ann@example.com","event":"open","timestamp":1.5e9,"pool":{"id":1.50},"note":"two  spaces"}}"#
            ),
            "{row_text}"
        );
    }

    #[test]
    fn rows_follow_the_declared_schema_order() {
        let result = transform_batch(&[body(json!([event("a", "open")]))]);
        let Some(row) = result.records.first() else {
            panic!("expected a row, got {:?}", result.failures);
        };
        let column_names: Vec<&str> = event::COLUMNS.iter().map(|column| column.name).collect();
        assert_eq!(top_level_keys(&row.value), column_names);
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use sluice_fuzz::plugin::{Batch, check_contract, sample_batches};
    use std::collections::HashSet;

    use super::*;

    /// The fields an event is read for.
    const KEYS: &[&str] = &[
        "email",
        "timestamp",
        "event",
        "sg_event_id",
        "sg_message_id",
        "smtp-id",
        "category",
        "reason",
        "status",
        "response",
        "attempt",
        "type",
        "bounce_classification",
        "tls",
        "useragent",
        "ip",
        "url",
        "url_offset",
        "asm_group_id",
        "pool",
        "marketing_campaign_id",
        "marketing_campaign_name",
    ];

    fn batches() -> impl Strategy<Value = Batch> {
        sample_batches(concat!(env!("CARGO_MANIFEST_DIR"), "/samples"), KEYS)
    }

    /// A failure reason without its leading `[element]`.
    fn without_element(reason: &str) -> &str {
        reason.split_once(']').map_or(reason, |(_, rest)| rest)
    }

    proptest! {
        #![proptest_config(sluice_fuzz::config())]

        #[test]
        fn every_event_gives_a_row_or_a_part_failure_and_other_bodies_fail_whole(batch in batches()) {
            let result = transform_batch(&batch.0);
            let accounts = check_contract(&batch.0, &result)?;
            for (record, account) in batch.0.iter().zip(&accounts) {
                match parse_body(&record.value) {
                    // An event seen earlier in the batch gives neither.
                    Ok(events) => prop_assert!(
                        account.whole_failures == 0 && account.rows + account.part_failures <= events.len(),
                        "{:?} for {} events", account, events.len()
                    ),
                    Err(_) => prop_assert_eq!(account.whole_failures, 1),
                }
            }
            let mut keys = HashSet::new();
            for row in &result.records {
                prop_assert!(keys.insert(row.key.clone()), "{:?} written twice", row.key);
            }
        }

        #[test]
        fn a_failed_event_rerun_alone_fails_the_same_way_and_gives_nothing_else(batch in batches()) {
            for failure in transform_batch(&batch.0).failures {
                let Some(part) = failure.part else { continue };
                let rerun = transform_batch(&[RecordIn::from_value(part.clone())]);
                prop_assert!(rerun.records.is_empty(), "{:?} gave rows", String::from_utf8_lossy(&part));
                prop_assert_eq!(rerun.failures.len(), 1);
                prop_assert_eq!(rerun.failures[0].part.as_ref(), Some(&part));
                prop_assert_eq!(without_element(&rerun.failures[0].reason), without_element(&failure.reason));
            }
        }
    }
}
