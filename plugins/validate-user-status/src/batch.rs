//! One call of the plugin: a batch of user-status records in, rows for three outputs out.

use sluice_plugin_sdk::{BatchResult, Failure, InputKeys, Outputs, RecordIn, RowError};

use crate::outputs::{OUTPUTS, push_error_rec, push_valid};
use crate::user_status::UserStatusFields;

/// Sorts every record of `batch` into rows or a failure.
///
/// A valid record yields a `user_status` row and a `status_logs` row; an invalid object yields
/// one `user_status_error_rec` row; input that is not a JSON object is a failure, always whole
/// since one input record is one user. Rows keep the input's key (see [`InputKeys`]) and index,
/// and follow the batch's order.
pub fn transform(batch: &[RecordIn]) -> BatchResult {
    let mut outputs = Outputs::new(OUTPUTS);
    let keys = InputKeys::of(batch);
    for (index, record) in (0u32..).zip(batch) {
        if let Err(failure) = sort_record(index, keys.key(record), &record.value, &mut outputs) {
            // All rows of a record or none: a user_status row without its logs would be wrong.
            outputs.discard_input(index);
            outputs.fail(failure);
        }
    }
    outputs.finish()
}

/// Appends the rows of one record; on error the caller drops what was appended.
fn sort_record(index: u32, key: Option<&[u8]>, value: &[u8], outputs: &mut Outputs) -> Result<(), Failure> {
    let fields = UserStatusFields::read(value).map_err(|reason| Failure::whole(index, reason))?;
    // The rows always fit their columns; an error is still the record's failure, not a panic.
    let row_failure = |error: RowError| error.into_failure(index);
    match fields.validate() {
        Some(valid) => push_valid(outputs, index, key, &valid).map_err(row_failure),
        None => push_error_rec(outputs, index, key, &fields.error_rec()).map_err(row_failure),
    }
}

#[cfg(test)]
mod tests {
    use sluice_plugin_sdk::render::{RenderedRow, result_rows};

    use super::*;
    use crate::outputs::{STATUS_LOGS, USER_STATUS, USER_STATUS_ERROR_REC, declared};

    const VALID: &str = r#"{"userId":"0000","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"VERIFIED","isBlacklisted":false,"statusLogs":[]}"#;
    const INVALID: &str = r#"{"userId":"0001","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"","isBlacklisted":false,"statusLogs":[]}"#;

    fn rows_of(result: &BatchResult) -> Vec<RenderedRow> {
        result_rows(&declared(), result).unwrap()
    }

    fn outputs_of(result: &BatchResult) -> Vec<(String, u32, String)> {
        rows_of(result).into_iter().map(|row| (row.output, row.input, row.json)).collect()
    }

    #[test]
    fn samples_give_the_expected_rows_and_failures() {
        sluice_plugin_sdk::samples::assert_expected(
            concat!(env!("CARGO_MANIFEST_DIR"), "/samples"),
            &declared(),
            transform,
        );
    }

    #[test]
    fn empty_batch_gives_nothing() {
        assert_eq!(transform(&[]), BatchResult::empty());
    }

    #[test]
    fn rows_keep_batch_order_and_input_index() {
        let batch = [INVALID, VALID, "[]", VALID].map(RecordIn::from_value);
        let result = transform(&batch);
        let routed: Vec<_> = outputs_of(&result).into_iter().map(|(o, i, _)| (o, i)).collect();
        let routed: Vec<_> = routed.iter().map(|(o, i)| (o.as_str(), *i)).collect();
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
        assert_eq!(result.failures[0].field, None);
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
            assert_eq!(outputs_of(&result), [(USER_STATUS_ERROR_REC.to_owned(), 0, error_rec)], "{value}");
        }
    }

    #[test]
    fn status_logs_entry_that_is_not_an_object_gives_an_error_rec_row_not_a_user_status_row() {
        // explode-status-logs would dead-letter these logs after the user_status row was written.
        let record = RecordIn::from_value(VALID.replace("[]", r#"[{"status":"INITIATED"},"VERIFIED"]"#));
        let result = transform(&[record]);
        assert!(result.failures.is_empty(), "{:?}", result.failures);
        let error_rec = r#"{"error_rec":"userid:0000,createdAt:2022-02-10T21:09:51Z,lastVisitedAt:1644527391,status:VERIFIED,statusLogs:[{\"status\":\"INITIATED\"},\"VERIFIED\"],isBlacklisted:false"}"#;
        assert_eq!(outputs_of(&result), [(USER_STATUS_ERROR_REC.to_owned(), 0, error_rec.to_owned())]);
    }

    #[test]
    fn status_logs_entries_lacking_fields_are_passed_on_whole() {
        let logs = r#"[{},{"status":null,"updatedOn":1.5}]"#;
        let result = transform(&[RecordIn::from_value(VALID.replace("[]", logs))]);
        let routed: Vec<_> = outputs_of(&result).into_iter().map(|(o, _, v)| (o, v.contains(logs))).collect();
        assert_eq!(routed, [(USER_STATUS.to_owned(), false), (STATUS_LOGS.to_owned(), true)]);
    }

    #[test]
    fn rows_keep_the_input_key() {
        let mut keyed = RecordIn::from_value(VALID);
        keyed.key = Some(b"user-0000".to_vec());
        let unkeyed = RecordIn::from_value(INVALID);
        let keys: Vec<_> = rows_of(&transform(&[keyed, unkeyed.clone()]))
            .into_iter()
            .map(|row| (row.input, row.key))
            .collect();
        assert_eq!(
            keys,
            [(0, Some(b"user-0000".to_vec())), (0, Some(b"user-0000".to_vec())), (1, Some(Vec::new()))],
            "a record without a key among keyed ones gets an empty key"
        );
        assert!(rows_of(&transform(&[unkeyed])).iter().all(|row| row.key.is_none()));
    }
}

#[cfg(test)]
mod fuzz {
    use explode_status_logs::ExplodeStatusLogs;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;
    use sluice_fuzz::plugin::{Batch, check_contract, sample_batches};
    use sluice_plugin_sdk::Plugin;
    use sluice_plugin_sdk::render::result_rows;

    use super::*;
    use crate::outputs::{STATUS_LOGS, USER_STATUS, USER_STATUS_ERROR_REC, declared};

    /// The fields a user-status record is read for, and those of its status log entries.
    const KEYS: &[&str] =
        &["userId", "createdAt", "lastVisitedAt", "status", "isBlacklisted", "statusLogs", "updatedOn"];

    fn batches() -> impl Strategy<Value = Batch> {
        sample_batches(concat!(env!("CARGO_MANIFEST_DIR"), "/samples"), KEYS)
    }

    proptest! {
        #![proptest_config(sluice_fuzz::config())]

        #[test]
        fn the_one_pass_reading_gives_what_serde_json_alone_gives(batch in batches()) {
            for record in &batch.0 {
                prop_assert_eq!(
                    crate::user_status::UserStatusFields::read(&record.value),
                    crate::user_status::UserStatusFields::read_with_serde(&record.value)
                );
            }
        }

        #[test]
        fn every_record_gives_its_two_rows_an_error_row_or_one_failure(batch in batches()) {
            let result = transform(&batch.0);
            let accounts = check_contract(&batch.0, &declared(), &result)?;
            let rows = result_rows(&declared(), &result).map_err(TestCaseError::fail)?;
            for (index, account) in (0u32..).zip(&accounts) {
                let outputs: Vec<&str> =
                    rows.iter().filter(|row| row.input == index).map(|row| row.output.as_str()).collect();
                let expected: &[&[&str]] = &[&[USER_STATUS, STATUS_LOGS], &[USER_STATUS_ERROR_REC], &[]];
                prop_assert!(expected.contains(&&outputs[..]), "input {}: {:?}", index, outputs);
                prop_assert_eq!(outputs.is_empty(), account.whole_failures == 1, "input {}", index);
                prop_assert_eq!(account.part_failures, 0);
            }
            let keys = InputKeys::of(&batch.0);
            for row in &rows {
                prop_assert_eq!(row.key.as_deref(), keys.key(&batch.0[row.input as usize]));
            }
        }

        #[test]
        fn every_status_logs_record_passed_on_explodes_whole(batch in batches()) {
            // A chained step receives each row as the JSON object the host renders.
            let status_logs: Vec<RecordIn> = result_rows(&declared(), &transform(&batch.0))
                .map_err(TestCaseError::fail)?
                .into_iter()
                .filter(|row| row.output == STATUS_LOGS)
                .map(|row| RecordIn::from_value(row.json))
                .collect();
            let exploded = ExplodeStatusLogs::transform(&status_logs, &());
            prop_assert!(exploded.failures.is_empty(), "{:?}", exploded.failures);
        }
    }
}
