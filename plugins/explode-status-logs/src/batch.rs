//! One call of the plugin: a batch of `status_logs` records in, `user_status_log` rows out.

use sluice_plugin_sdk::{BatchResult, Failure, InputKeys, OutputRows, RecordIn};

use crate::outputs::{USER_STATUS_LOG, USER_STATUS_LOG_COLUMNS, UserStatusLogRow};
use crate::status_log::explode;

/// Explodes every record of `batch` into rows, and reports what could not be used.
///
/// Rows keep the input's key (see [`InputKeys`]) and index, and follow the batch's order, then
/// the entries' order. A record gives rows for all its entries or, with one whole failure (no
/// `part`), none at all.
pub fn transform(batch: &[RecordIn]) -> BatchResult {
    let mut rows = OutputRows::new(USER_STATUS_LOG, USER_STATUS_LOG_COLUMNS);
    rows.reserve(batch.len() * 3);
    let mut failures = Vec::new();
    let keys = InputKeys::of(batch);
    for (index, record) in (0u32..).zip(batch) {
        if let Err(failure) = push_rows(index, keys.key(record), &record.value, &mut rows) {
            // A row already pushed would be inserted again when the dead letter is replayed.
            rows.discard_input(index);
            failures.push(failure);
        }
    }
    let outputs = if rows.is_empty() { Vec::new() } else { vec![rows.finish()] };
    BatchResult { outputs, failures }
}

/// Appends one row per entry of the record `value`; on error the caller drops what was appended.
fn push_rows(index: u32, key: Option<&[u8]>, value: &[u8], rows: &mut OutputRows) -> Result<(), Failure> {
    let exploded = explode(value).map_err(|error| Failure {
        index,
        field: error.field,
        reason: error.problem,
        part: None,
    })?;
    for entry in &exploded.entries {
        let row = UserStatusLogRow {
            user_id: &exploded.user_id,
            updated_on: entry.updated_on.as_deref(),
            status: entry.status.as_deref(),
        };
        // Rows of plain strings and nulls always fit; if one ever did not, say so instead of panicking.
        rows.push(index, key, &row).map_err(|error| error.into_failure(index))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sluice_plugin_sdk::render::{RenderedRow, result_rows};

    use super::*;
    use crate::outputs::declared;

    fn rendered(result: &BatchResult) -> Vec<RenderedRow> {
        result_rows(&declared(), result).unwrap()
    }

    fn rows_of(result: &BatchResult) -> Vec<(u32, serde_json::Value)> {
        rendered(result).iter().map(|row| (row.input, row.value())).collect()
    }

    fn failures_of(result: &BatchResult) -> Vec<(u32, Option<&str>, &str)> {
        result.failures.iter().map(|f| (f.index, f.field.as_deref(), f.reason.as_str())).collect()
    }

    #[test]
    fn samples_give_the_expected_rows_and_failures() {
        let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
        sluice_plugin_sdk::samples::assert_expected(samples, &declared(), |batch| {
            let result = transform(batch);
            assert!(result.outputs.iter().all(|rows| rows.output == USER_STATUS_LOG));
            result
        });
    }

    #[test]
    fn empty_batch_gives_nothing() {
        assert_eq!(transform(&[]), BatchResult::empty());
    }

    #[test]
    fn rows_keep_batch_and_entry_order_and_input_index() {
        let batch = [
            r#"{"userId":"a","statusLogs":[{"status":"A1","updatedOn":1},{"status":"A2","updatedOn":2}]}"#,
            r#"{"userId":"b","statusLogs":[]}"#,
            r#"{"userId":"c","statusLogs":[{"status":"C1","updatedOn":"3"}]}"#,
        ]
        .map(RecordIn::from_value);
        let result = transform(&batch);
        assert_eq!(
            rows_of(&result),
            [
                (0, serde_json::json!({"userId":"a","updatedOn":"1","status":"A1"})),
                (0, serde_json::json!({"userId":"a","updatedOn":"2","status":"A2"})),
                (2, serde_json::json!({"userId":"c","updatedOn":"3","status":"C1"})),
            ]
        );
        assert!(result.failures.is_empty());
    }

    #[test]
    fn entries_lacking_fields_give_rows_with_nulls() {
        let batch = [r#"{"userId":"a","statusLogs":[{"updatedOn":1.5},{"status":""},{"status":true,"updatedOn":[1, 2]}]}"#]
            .map(RecordIn::from_value);
        let result = transform(&batch);
        let rows: Vec<String> = rendered(&result).into_iter().map(|row| row.json).collect();
        assert_eq!(
            rows,
            [
                r#"{"userId":"a","updatedOn":"1.5"}"#,
                r#"{"userId":"a","status":""}"#,
                r#"{"userId":"a","updatedOn":"[1,2]","status":"true"}"#,
            ]
        );
        let nulls: Vec<&[u32]> =
            result.outputs[0].columns.iter().map(|column| column.nulls.as_slice()).collect();
        assert_eq!(nulls, [&[][..], &[1], &[0]]);
        assert!(result.failures.is_empty());
    }

    #[test]
    fn record_with_entries_that_are_not_objects_gives_no_rows_and_one_failure() {
        let batch = [r#"{"userId":"a","statusLogs":[{"status":"A1","updatedOn":1},{},7,"B"]}"#]
            .map(RecordIn::from_value);
        let result = transform(&batch);
        assert!(result.outputs.is_empty());
        assert_eq!(result.failures.len(), 1);
        assert_eq!(result.failures[0].part, None, "the whole record fails, not its bad entries");
        assert_eq!(
            failures_of(&result),
            [(
                0,
                None,
                "statusLogs[2]: expected an object, found a number; statusLogs[3]: expected an object, found a string"
            )]
        );
    }

    #[test]
    fn failing_record_leaves_its_neighbours_whole() {
        let good = r#"{"userId":"a","statusLogs":[{"status":"A1","updatedOn":1},{"status":"A2"}]}"#;
        let bad = r#"{"userId":"b","statusLogs":[{"status":"B1","updatedOn":2},null]}"#;
        let result = transform(&[good, bad, good].map(RecordIn::from_value));
        assert_eq!(result.outputs[0].inputs, [0, 0, 2, 2]);
        assert_eq!(failures_of(&result), [(1, Some("statusLogs[1]"), "expected an object, found null")]);
    }

    #[test]
    fn rows_keep_the_input_key() {
        let mut keyed = RecordIn::from_value(r#"{"userId":"a","statusLogs":[{"status":"A","updatedOn":1}]}"#);
        keyed.key = Some(b"user-a".to_vec());
        let unkeyed = RecordIn::from_value(r#"{"userId":"b","statusLogs":[{"status":"B"}]}"#);
        let keys: Vec<_> =
            rendered(&transform(&[keyed.clone(), unkeyed.clone()])).into_iter().map(|row| row.key).collect();
        assert_eq!(
            keys,
            [Some(b"user-a".to_vec()), Some(Vec::new())],
            "a record without a key among keyed ones gets an empty key"
        );
        let keys: Vec<_> = rendered(&transform(&[unkeyed])).into_iter().map(|row| row.key).collect();
        assert_eq!(keys, [None]);
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;
    use serde_json::value::RawValue;
    use sluice_fuzz::plugin::{Batch, check_contract, sample_batches};
    use sluice_plugin_sdk::render::result_rows;
    use std::collections::BTreeMap;

    use super::*;
    use crate::outputs::declared;

    /// The fields a `status_logs` record and its entries are read for.
    const KEYS: &[&str] = &["userId", "statusLogs", "status", "updatedOn"];

    fn batches() -> impl Strategy<Value = Batch> {
        sample_batches(concat!(env!("CARGO_MANIFEST_DIR"), "/samples"), KEYS)
    }

    proptest! {
        #![proptest_config(sluice_fuzz::config())]

        #[test]
        fn every_record_gives_a_row_per_entry_or_one_failure(batch in batches()) {
            let result = transform(&batch.0);
            let accounts = check_contract(&batch.0, &declared(), &result)?;
            for (record, account) in batch.0.iter().zip(&accounts) {
                prop_assert_eq!(account.part_failures, 0);
                if account.whole_failures == 0 {
                    // It exploded, so it is an object with a `statusLogs` array; raw values,
                    // because a number is kept as written however large.
                    let fields: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(&record.value)?;
                    let logs = fields.get("statusLogs").map(|logs| logs.get()).unwrap_or_default();
                    let entries: Vec<Box<RawValue>> = serde_json::from_str(logs)?;
                    prop_assert_eq!(account.rows, entries.len());
                }
            }
            let keys = InputKeys::of(&batch.0);
            for row in result_rows(&declared(), &result).map_err(TestCaseError::fail)? {
                prop_assert_eq!(row.output.as_str(), USER_STATUS_LOG);
                prop_assert_eq!(row.key.as_deref(), keys.key(&batch.0[row.input as usize]));
            }
        }
    }
}
