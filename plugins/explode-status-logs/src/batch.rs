//! One call of the plugin: a batch of `status_logs` records in, `user_status_log` rows out.

use sluice_plugin_sdk::{BatchResult, Failure, RecordIn, RecordOut};

use crate::outputs::{USER_STATUS_LOG, UserStatusLogRow};
use crate::status_log::explode;

/// Explodes every record of `batch` into rows, and reports what could not be used.
///
/// Rows keep the input's key and index, and follow the batch's order, then the entries'
/// order. A record gives rows for all its entries or, with one whole failure (no `part`), none
/// at all.
pub fn transform(batch: &[RecordIn]) -> BatchResult {
    let mut result = BatchResult { records: Vec::with_capacity(batch.len() * 3), failures: Vec::new() };
    for (index, record) in (0u32..).zip(batch) {
        let first_row = result.records.len();
        if let Err(reason) = push_rows(index, record, &mut result.records) {
            // A row already pushed would be inserted again when the dead letter is replayed.
            result.records.truncate(first_row);
            result.failures.push(Failure::whole(index, reason));
        }
    }
    result
}

/// Appends one row per entry of `record`; on error the caller drops what was appended.
fn push_rows(index: u32, record: &RecordIn, records: &mut Vec<RecordOut>) -> Result<(), String> {
    let exploded = explode(&record.value)?;
    for entry in &exploded.entries {
        let row = UserStatusLogRow {
            user_id: &exploded.user_id,
            updated_on: entry.updated_on.as_deref(),
            status: entry.status.as_deref(),
        };
        // Rows of plain strings and nulls always encode; if one ever did not, say so instead of panicking.
        let value = serde_json::to_vec(&row).map_err(|error| format!("could not encode a row: {error}"))?;
        records.push(RecordOut {
            output: USER_STATUS_LOG.to_owned(),
            input: index,
            key: record.key.clone(),
            value,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(result: &BatchResult) -> Vec<(u32, serde_json::Value)> {
        result.records.iter().map(|r| (r.input, serde_json::from_slice(&r.value).unwrap())).collect()
    }

    #[test]
    fn samples_give_the_expected_rows_and_failures() {
        let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
        sluice_plugin_sdk::samples::assert_expected(samples, |batch| {
            let result = transform(batch);
            assert!(result.records.iter().all(|record| record.output == USER_STATUS_LOG));
            result
        });
    }

    #[test]
    fn empty_batch_gives_nothing() {
        let result = transform(&[]);
        assert!(result.records.is_empty() && result.failures.is_empty());
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
        let values: Vec<&[u8]> = result.records.iter().map(|record| record.value.as_slice()).collect();
        assert_eq!(
            values,
            [
                &br#"{"userId":"a","updatedOn":"1.5","status":null}"#[..],
                br#"{"userId":"a","updatedOn":null,"status":""}"#,
                br#"{"userId":"a","updatedOn":"[1,2]","status":"true"}"#,
            ]
        );
        assert!(result.failures.is_empty());
    }

    #[test]
    fn record_with_an_entry_that_is_not_an_object_gives_no_rows_and_one_failure() {
        let batch = [r#"{"userId":"a","statusLogs":[{"status":"A1","updatedOn":1},{},7,"B"]}"#]
            .map(RecordIn::from_value);
        let result = transform(&batch);
        assert_eq!(result.records.len(), 0);
        assert_eq!(result.failures.len(), 1);
        assert_eq!(result.failures[0].index, 0);
        assert_eq!(result.failures[0].part, None, "the whole record fails, not its bad entries");
        assert_eq!(
            result.failures[0].reason,
            "statusLogs[2]: expected an object, found a number; statusLogs[3]: expected an object, found a string"
        );
    }

    #[test]
    fn failing_record_leaves_its_neighbours_whole() {
        let good = r#"{"userId":"a","statusLogs":[{"status":"A1","updatedOn":1},{"status":"A2"}]}"#;
        let bad = r#"{"userId":"b","statusLogs":[{"status":"B1","updatedOn":2},null]}"#;
        let result = transform(&[good, bad, good].map(RecordIn::from_value));
        let inputs: Vec<u32> = result.records.iter().map(|record| record.input).collect();
        assert_eq!(inputs, [0, 0, 2, 2]);
        let failures: Vec<_> = result.failures.iter().map(|f| (f.index, f.reason.as_str())).collect();
        assert_eq!(failures, [(1, "statusLogs[1]: expected an object, found null")]);
    }

    #[test]
    fn rows_keep_the_input_key() {
        let mut record =
            RecordIn::from_value(r#"{"userId":"a","statusLogs":[{"status":"A","updatedOn":1}]}"#);
        record.key = Some(b"user-a".to_vec());
        let result = transform(&[record]);
        assert_eq!(result.records[0].key.as_deref(), Some(&b"user-a"[..]));
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::value::RawValue;
    use sluice_fuzz::plugin::{Batch, check_contract, sample_batches};
    use std::collections::BTreeMap;

    use super::*;

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
            let accounts = check_contract(&batch.0, &result)?;
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
            for row in &result.records {
                prop_assert_eq!(row.output.as_str(), USER_STATUS_LOG);
                prop_assert_eq!(&row.key, &batch.0[row.input as usize].key);
            }
        }
    }
}
