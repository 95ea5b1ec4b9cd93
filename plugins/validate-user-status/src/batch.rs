//! One call of the plugin: a batch of user-status records in, rows for three outputs out.

use serde::Serialize;
use sluice_plugin_sdk::json::parse_object;
use sluice_plugin_sdk::{BatchResult, Failure, RecordIn, RecordOut};

use crate::outputs::{
    ErrorRecRow, STATUS_LOGS, StatusLogsRow, USER_STATUS, USER_STATUS_ERROR_REC, UserStatusRow,
};
use crate::user_status::UserStatusFields;

/// Sorts every record of `batch` into rows or a failure.
///
/// A valid record yields a `user_status` row then a `status_logs` record; an invalid object
/// yields one `user_status_error_rec` row; input that is not a JSON object is a failure, always
/// whole since one input record is one user. Rows keep the input's key and index, and follow
/// the batch's order.
pub fn transform(batch: &[RecordIn]) -> BatchResult {
    let mut result = BatchResult { records: Vec::with_capacity(batch.len() * 2), failures: Vec::new() };
    for (index, record) in (0u32..).zip(batch) {
        if let Err(reason) = sort_record(index, record, &mut result.records) {
            result.failures.push(Failure::whole(index, reason));
        }
    }
    result
}

/// Appends the rows of one record, all or none.
fn sort_record(index: u32, record: &RecordIn, records: &mut Vec<RecordOut>) -> Result<(), String> {
    let fields: UserStatusFields = parse_object(&record.value)?;
    let mut push = |output: &str, value: Vec<u8>| {
        records.push(RecordOut { output: output.to_owned(), input: index, key: record.key.clone(), value });
    };
    match fields.validate() {
        Some(valid) => {
            let user_status = encode(&UserStatusRow::from(&valid))?;
            let status_logs = encode(&StatusLogsRow::from(&valid))?;
            push(USER_STATUS, user_status);
            push(STATUS_LOGS, status_logs);
        }
        None => push(USER_STATUS_ERROR_REC, encode(&ErrorRecRow { error_rec: fields.error_rec() })?),
    }
    Ok(())
}

/// Compact JSON for a row. The row types cannot fail to encode; an error is still reported
/// as the record's failure rather than a panic.
fn encode(row: &impl Serialize) -> Result<Vec<u8>, String> {
    serde_json::to_vec(row).map_err(|error| format!("could not encode an output row: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{"userId":"0000","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"VERIFIED","isBlacklisted":false,"statusLogs":[]}"#;
    const INVALID: &str = r#"{"userId":"0001","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"","isBlacklisted":false,"statusLogs":[]}"#;

    fn outputs_of(result: &BatchResult) -> Vec<(&str, u32, &str)> {
        result
            .records
            .iter()
            .map(|r| (r.output.as_str(), r.input, std::str::from_utf8(&r.value).unwrap()))
            .collect()
    }

    #[test]
    fn samples_give_the_expected_rows_and_failures() {
        sluice_plugin_sdk::samples::assert_expected(
            concat!(env!("CARGO_MANIFEST_DIR"), "/samples"),
            transform,
        );
    }

    #[test]
    fn empty_batch_gives_nothing() {
        let result = transform(&[]);
        assert!(result.records.is_empty() && result.failures.is_empty());
    }

    #[test]
    fn rows_keep_batch_order_and_input_index() {
        let batch = [INVALID, VALID, "[]", VALID].map(RecordIn::from_value);
        let result = transform(&batch);
        let routed: Vec<_> = outputs_of(&result).into_iter().map(|(o, i, _)| (o, i)).collect();
        assert_eq!(
            routed,
            [
                (USER_STATUS_ERROR_REC, 0),
                (USER_STATUS, 1),
                (STATUS_LOGS, 1),
                (USER_STATUS, 3),
                (STATUS_LOGS, 3)
            ]
        );
        assert_eq!(result.failures.len(), 1);
        assert_eq!(result.failures[0].index, 2);
        assert_eq!(result.failures[0].reason, "expected a JSON object, found an array");
        assert_eq!(result.failures[0].part, None, "one input record is one user, so it fails whole");
    }

    #[test]
    fn last_visited_at_beyond_the_int_column_gives_an_error_rec_row_not_a_failure() {
        // PostgreSQL `int` is 32-bit: loading such a row would fail the whole job's transaction.
        for value in ["2147483648", "-2147483649", "4102444800", "99999999999999999999999", "1e400"] {
            let record = RecordIn::from_value(VALID.replace("1644527391", value));
            let result = transform(&[record]);
            assert!(result.failures.is_empty(), "{value}: {:?}", result.failures);
            let error_rec = format!(
                r#"{{"error_rec":"userid:0000,createdAt:2022-02-10T21:09:51Z,lastVisitedAt:{value},status:VERIFIED,statusLogs:[],isBlacklisted:false"}}"#
            );
            assert_eq!(outputs_of(&result), [(USER_STATUS_ERROR_REC, 0, error_rec.as_str())], "{value}");
        }
    }

    #[test]
    fn status_logs_entry_that_is_not_an_object_gives_an_error_rec_row_not_a_user_status_row() {
        // explode-status-logs would dead-letter these logs after the user_status row was written.
        let record = RecordIn::from_value(VALID.replace("[]", r#"[{"status":"INITIATED"},"VERIFIED"]"#));
        let result = transform(&[record]);
        assert!(result.failures.is_empty(), "{:?}", result.failures);
        let error_rec = r#"{"error_rec":"userid:0000,createdAt:2022-02-10T21:09:51Z,lastVisitedAt:1644527391,status:VERIFIED,statusLogs:[{\"status\":\"INITIATED\"},\"VERIFIED\"],isBlacklisted:false"}"#;
        assert_eq!(outputs_of(&result), [(USER_STATUS_ERROR_REC, 0, error_rec)]);
    }

    #[test]
    fn status_logs_entries_lacking_fields_are_passed_on_whole() {
        let logs = r#"[{},{"status":null,"updatedOn":1.5}]"#;
        let result = transform(&[RecordIn::from_value(VALID.replace("[]", logs))]);
        let routed: Vec<_> = outputs_of(&result).into_iter().map(|(o, _, v)| (o, v.contains(logs))).collect();
        assert_eq!(routed, [(USER_STATUS, false), (STATUS_LOGS, true)]);
    }

    #[test]
    fn rows_keep_the_input_key() {
        let mut record = RecordIn::from_value(VALID);
        record.key = Some(b"user-0000".to_vec());
        let result = transform(&[record]);
        assert!(result.records.iter().all(|r| r.key.as_deref() == Some(&b"user-0000"[..])));
    }
}

#[cfg(test)]
mod fuzz {
    use explode_status_logs::ExplodeStatusLogs;
    use proptest::prelude::*;
    use sluice_fuzz::plugin::{Batch, check_contract, sample_batches};
    use sluice_plugin_sdk::SettinglessPlugin;

    use super::*;

    /// The fields a user-status record is read for, and those of its status log entries.
    const KEYS: &[&str] =
        &["userId", "createdAt", "lastVisitedAt", "status", "isBlacklisted", "statusLogs", "updatedOn"];

    fn batches() -> impl Strategy<Value = Batch> {
        sample_batches(concat!(env!("CARGO_MANIFEST_DIR"), "/samples"), KEYS)
    }

    proptest! {
        #![proptest_config(sluice_fuzz::config())]

        #[test]
        fn every_record_gives_its_two_rows_an_error_row_or_one_failure(batch in batches()) {
            let result = transform(&batch.0);
            let accounts = check_contract(&batch.0, &result)?;
            for (index, account) in (0u32..).zip(&accounts) {
                let outputs: Vec<&str> =
                    result.records.iter().filter(|row| row.input == index).map(|row| row.output.as_str()).collect();
                let expected: &[&[&str]] = &[&[USER_STATUS, STATUS_LOGS], &[USER_STATUS_ERROR_REC], &[]];
                prop_assert!(expected.contains(&&outputs[..]), "input {}: {:?}", index, outputs);
                prop_assert_eq!(outputs.is_empty(), account.whole_failures == 1, "input {}", index);
                prop_assert_eq!(account.part_failures, 0);
            }
            for row in &result.records {
                prop_assert_eq!(&row.key, &batch.0[row.input as usize].key);
            }
        }

        #[test]
        fn every_status_logs_record_passed_on_explodes_whole(batch in batches()) {
            let status_logs: Vec<RecordIn> = transform(&batch.0)
                .records
                .into_iter()
                .filter(|row| row.output == STATUS_LOGS)
                .map(|row| RecordIn::from_value(row.value))
                .collect();
            let exploded = ExplodeStatusLogs::transform(&status_logs);
            prop_assert!(exploded.failures.is_empty(), "{:?}", exploded.failures);
        }
    }
}
