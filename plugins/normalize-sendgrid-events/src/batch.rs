//! One batch of webhook bodies in, deduplicated event rows out, failures beside them.

use std::borrow::Cow;
use std::convert::Infallible;

use hashbrown::HashSet;
use hashbrown::hash_set::Entry;
use sluice_plugin_sdk::json::single_element_array;
use sluice_plugin_sdk::{BatchResult, Failure, OutputRows, RecordIn};
use thiserror::Error;

use crate::fields::EventFields;
use crate::normalize::{ElementError, normalize_event};
use crate::outputs;
use crate::wire::{Element, read_body, read_body_with_serde};

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
/// A body that is not a JSON array fails as a whole; a bad event fails alone (field
/// `[element].field` or `[element]`, reason the problem) and the rest of its body still goes
/// through. The failure of a bad event carries that event as its part, `[<event's raw text>]`:
/// the host dead-letters only that event, so re-running the dead letter cannot emit the body's
/// good events twice, and the event's text is kept byte for byte for the `raw` column. SendGrid
/// retries deliveries, so an `sg_event_id` seen earlier in the batch is skipped: the first one
/// wins. Rows are keyed by `sg_event_id`.
pub fn transform_batch(batch: &[RecordIn]) -> BatchResult {
    transform(batch, Reading::OnePass)
}

/// How bodies are read: in one pass (serde_json only where that stops), or, to check the one
/// pass against, by serde_json alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    OnePass,
    #[cfg_attr(not(test), allow(dead_code))]
    SerdeOnly,
}

fn transform(batch: &[RecordIn], reading: Reading) -> BatchResult {
    let mut out = BatchRows::new(batch);
    let mut fields = EventFields::default();
    for (position, record) in batch.iter().enumerate() {
        // The contract's list length is a u32, so a position always fits.
        let input = u32::try_from(position).unwrap_or(u32::MAX);
        let text =
            match simdutf8::basic::from_utf8(&record.value).or_else(|_| std::str::from_utf8(&record.value)) {
                Ok(text) => text,
                Err(error) => {
                    out.failures.push(Failure::whole(input, BodyError::from(error).to_string()));
                    continue;
                }
            };
        let mark = out.mark();
        if reading == Reading::OnePass {
            let mut element = 0;
            let read = read_body(text, &mut fields, |read, fields| {
                out.event(input, element, &read, fields);
                element += 1;
                Ok::<(), Infallible>(())
            });
            if read.is_ok() {
                continue;
            }
            // Not a JSON array after all: what this body gave is taken back, and serde_json
            // reads it and says why.
            out.roll_back(mark);
        }
        let mut element = 0;
        let read = read_body_with_serde(text, &mut fields, |read, fields| {
            out.event(input, element, &read, fields);
            element += 1;
            Ok::<(), Infallible>(())
        });
        if let Err(error) = read {
            out.failures.push(Failure::whole(input, BodyError::from(error).to_string()));
        }
    }
    out.finish()
}

/// The batch's rows and failures as they are made, and the event ids seen so far.
struct BatchRows<'a> {
    rows: OutputRows,
    failures: Vec<Failure>,
    /// Ids borrow from the batch's records unless they held escapes.
    seen_event_ids: HashSet<Cow<'a, str>>,
    /// The ids the current body added to `seen_event_ids`, to take back if it is read again.
    body_event_ids: Vec<Cow<'a, str>>,
}

/// How far a [`BatchRows`] was before a body.
#[derive(Debug, Clone, Copy)]
struct Mark {
    rows: usize,
    failures: usize,
}

impl<'a> BatchRows<'a> {
    fn new(batch: &[RecordIn]) -> Self {
        let mut rows = OutputRows::new(outputs::OUTPUT, outputs::COLUMNS);
        let bytes: usize = batch.iter().map(|record| record.value.len()).sum();
        // The raw column holds about every byte of every body; events run to a few hundred bytes.
        rows.reserve_bytes(outputs::RAW_COLUMN, bytes);
        rows.reserve(bytes / 256);
        BatchRows {
            rows,
            failures: Vec::new(),
            seen_event_ids: HashSet::with_capacity(bytes / 256),
            body_event_ids: Vec::new(),
        }
    }

    fn mark(&mut self) -> Mark {
        self.body_event_ids.clear();
        Mark { rows: self.rows.len(), failures: self.failures.len() }
    }

    fn roll_back(&mut self, mark: Mark) {
        self.rows.truncate(mark.rows);
        self.failures.truncate(mark.failures);
        for id in self.body_event_ids.drain(..) {
            self.seen_event_ids.remove(&id);
        }
    }

    /// Writes event `element` of input `input`'s body, or its failure.
    fn event(&mut self, input: u32, element: usize, read: &Element<'a>, fields: &mut EventFields<'a>) {
        let written = normalize_event(read, fields, element).and_then(|event| {
            let Entry::Vacant(unseen) = self.seen_event_ids.entry(event.sg_event_id.clone()) else {
                return Ok(());
            };
            event.write(&mut self.rows, input).map_err(|error| ElementError {
                element,
                field: None,
                problem: format!("could not write the row: {error}"),
            })?;
            self.body_event_ids.push(unseen.get().clone());
            unseen.insert();
            Ok(())
        });
        if let Err(error) = written {
            let failure = Failure::part(input, error.problem.as_str(), single_element_array(read.text()));
            self.failures.push(failure.with_field(error.path()));
        }
    }

    fn finish(self) -> BatchResult {
        let outputs = if self.rows.is_empty() { Vec::new() } else { vec![self.rows.finish()] };
        BatchResult { outputs, failures: self.failures }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use sluice_plugin_sdk::render::{RenderedRow, check_batch, result_rows};

    use super::*;

    fn event(id: &str, event_type: &str) -> Value {
        json!({"email": "ann@example.com", "timestamp": 1_513_299_569, "event": event_type, "sg_event_id": id})
    }

    fn body(events: Value) -> RecordIn {
        RecordIn::from_value(events.to_string())
    }

    fn rows_of(result: &BatchResult) -> Vec<RenderedRow> {
        result_rows(&crate::outputs::declared(), result).unwrap()
    }

    fn failures(result: &BatchResult) -> Vec<(u32, Option<&str>, &str)> {
        result
            .failures
            .iter()
            .map(|failure| (failure.index, failure.field.as_deref(), failure.reason.as_str()))
            .collect()
    }

    fn parts(result: &BatchResult) -> Vec<Option<String>> {
        let text = |part: &Vec<u8>| String::from_utf8_lossy(part).into_owned();
        result.failures.iter().map(|failure| failure.part.as_ref().map(text)).collect()
    }

    fn emitted_ids(result: &BatchResult) -> Vec<(u32, String)> {
        rows_of(result)
            .into_iter()
            .map(|row| {
                let key = String::from_utf8_lossy(row.key.as_deref().unwrap_or_default()).into_owned();
                assert_eq!(row.value()["sg_event_id"], json!(key), "rows are keyed by their event id");
                (row.input, key)
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
        assert!(result.outputs.iter().all(|rows| rows.output == "events"));
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
        assert_eq!(
            failures(&result),
            vec![(1, Some("[1]"), "not a JSON object"), (1, Some("[2].sg_event_id"), "required")]
        );
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
        assert_eq!(failures(&result).iter().map(|(index, _, _)| *index).collect::<Vec<_>>(), vec![0, 0]);
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
        assert!(rerun.outputs.is_empty(), "the good event of the body must not come back");
        assert_eq!(
            failures(&rerun),
            vec![(0, Some("[0].timestamp"), "must be a number (unix seconds), not a string or other value")]
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
        assert_eq!(failures.iter().map(|(index, _, _)| *index).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(failures.iter().all(|(_, field, _)| field.is_none()));
        assert!(failures[0].2.starts_with(
            "value is not a JSON array of SendGrid events: invalid type: map, expected a sequence"
        ));
        assert!(failures[1].2.starts_with("value is not a JSON array of SendGrid events: "));
        assert!(failures[2].2.starts_with("value is not UTF-8 text: "));
        assert_eq!(parts(&result), vec![None, None, None], "a body that is no array fails whole");
        assert!(result.outputs.is_empty());
    }

    #[test]
    fn json_columns_keep_the_original_text_without_spacing() {
        let text = r#"[ {"sg_event_id":"a", "email":"ann@example.com","event":"open",
            "timestamp":1.5e9, "pool": {"id": 1.50}, "note": "two  spaces"} ]"#;
        let result = transform_batch(&[RecordIn::from_value(text)]);
        let Some(row) = rows_of(&result).into_iter().next() else {
            panic!("expected a row, got {:?}", result.failures);
        };
        assert!(row.json.contains(r#""pool":{"id":1.50}"#), "{}", row.json);
        assert!(
            row.json.ends_with(
                r#""custom_args":{"note":"two  spaces"},"raw":{"sg_event_id":"a","email":"ann@example.com","event":"open","timestamp":1.5e9,"pool":{"id":1.50},"note":"two  spaces"}}"#
            ),
            "{}",
            row.json
        );
    }

    #[test]
    fn rows_fill_every_declared_column_with_its_type() {
        let result = transform_batch(&[body(json!([event("a", "open"), event("b", "click")]))]);
        let info = &crate::outputs::declared()[0];
        assert_eq!(check_batch(info, &result.outputs[0]), Ok(2));
        let row = rows_of(&result).remove(0).value();
        assert_eq!(row["dt"], json!("2017-12-15"));
        assert_eq!(row["event_time"], json!(1_513_299_569_000_i64));
        assert_eq!(row["categories"], json!([]));
        assert_eq!(row.get("sg_message_id"), None, "a null is left out of the rendered row");
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;
    use sluice_fuzz::plugin::{Batch, check_contract, sample_batches};
    use sluice_plugin_sdk::render::result_rows;
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

    /// A failure's field without its leading `[element]`.
    fn without_element(field: Option<&str>) -> Option<&str> {
        field.map(|field| field.split_once(']').map_or(field, |(_, rest)| rest))
    }

    proptest! {
        #![proptest_config(sluice_fuzz::config())]

        #[test]
        fn every_event_gives_a_row_or_a_part_failure_and_other_bodies_fail_whole(batch in batches()) {
            let result = transform_batch(&batch.0);
            let accounts = check_contract(&batch.0, &crate::outputs::declared(), &result)?;
            for (record, account) in batch.0.iter().zip(&accounts) {
                let elements = std::str::from_utf8(&record.value)
                    .ok()
                    .and_then(|text| serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text).ok())
                    .map(|elements| elements.len());
                match elements {
                    // An event seen earlier in the batch gives neither.
                    Some(events) => prop_assert!(
                        account.whole_failures == 0 && account.rows + account.part_failures <= events,
                        "{:?} for {} events", account, events
                    ),
                    None => prop_assert_eq!(account.whole_failures, 1),
                }
            }
            let mut keys = HashSet::new();
            for row in result_rows(&crate::outputs::declared(), &result).map_err(TestCaseError::fail)? {
                prop_assert!(row.key.is_some(), "rows are keyed");
                prop_assert!(keys.insert(row.key.clone()), "{:?} written twice", row.key);
            }
        }

        #[test]
        fn the_one_pass_reading_gives_what_serde_json_alone_gives(batch in batches()) {
            let serde_only = transform(&batch.0, Reading::SerdeOnly);
            prop_assert_eq!(transform_batch(&batch.0), serde_only);
        }

        #[test]
        fn a_failed_event_rerun_alone_fails_the_same_way_and_gives_nothing_else(batch in batches()) {
            for failure in transform_batch(&batch.0).failures {
                let Some(part) = failure.part else { continue };
                let rerun = transform_batch(&[RecordIn::from_value(part.clone())]);
                prop_assert!(rerun.outputs.is_empty(), "{:?} gave rows", String::from_utf8_lossy(&part));
                prop_assert_eq!(rerun.failures.len(), 1);
                prop_assert_eq!(rerun.failures[0].part.as_ref(), Some(&part));
                prop_assert_eq!(&rerun.failures[0].reason, &failure.reason);
                prop_assert_eq!(
                    without_element(rerun.failures[0].field.as_deref()),
                    without_element(failure.field.as_deref())
                );
            }
        }
    }
}
