//! The plugin's named outputs: their columns and the rows written to them.
//!
//! Each output's rows are written value by value in its column order, as `OutputRows` checks.

use sluice_plugin_sdk::schema::{Column, ColumnType};
use sluice_plugin_sdk::{OutputInfo, Outputs, RowError};

use crate::user_status::ValidUserStatus;

/// Valid records, one row each, for the `user_status` table.
pub const USER_STATUS: &str = "user_status";
/// Valid records' status logs, for `explode-status-logs`.
pub const STATUS_LOGS: &str = "status_logs";
/// Invalid records, one text row each, for the `user_status_error_rec` table.
pub const USER_STATUS_ERROR_REC: &str = "user_status_error_rec";

/// The columns of a `user_status` row, in the order [`push_valid`] writes them.
const USER_STATUS_COLUMNS: &[Column] = &[
    Column::required("userId", ColumnType::Text),
    Column::required("createdAt", ColumnType::Text),
    Column::required("status", ColumnType::Text),
    Column::required("lastVisitedAt", ColumnType::Int64),
    Column::required("isBlacklisted", ColumnType::Boolean),
];

/// The columns of a `status_logs` record, in the order [`push_valid`] writes them.
const STATUS_LOGS_COLUMNS: &[Column] =
    &[Column::required("userId", ColumnType::Text), Column::required("statusLogs", ColumnType::Json)];

/// The column of a `user_status_error_rec` row.
const USER_STATUS_ERROR_REC_COLUMNS: &[Column] = &[Column::required("error_rec", ColumnType::Text)];

/// Every output and its columns, in the order `info()` declares them.
pub const OUTPUTS: &[(&str, &[Column])] = &[
    (USER_STATUS, USER_STATUS_COLUMNS),
    (STATUS_LOGS, STATUS_LOGS_COLUMNS),
    (USER_STATUS_ERROR_REC, USER_STATUS_ERROR_REC_COLUMNS),
];

/// The outputs this plugin declares in `info()`.
pub fn declared() -> Vec<OutputInfo> {
    OUTPUTS.iter().map(|&(name, columns)| OutputInfo::new(name, columns)).collect()
}

/// Writes `valid`'s rows: its `user_status` row and its `status_logs` record.
///
/// # Errors
/// Only a batch too large for the contract's offsets.
pub fn push_valid(
    outputs: &mut Outputs,
    input: u32,
    key: Option<&[u8]>,
    valid: &ValidUserStatus<'_>,
) -> Result<(), RowError> {
    if let Some(rows) = outputs.rows(USER_STATUS) {
        rows.row(input, key)
            .text(&valid.user_id)
            .text(&valid.created_at)
            .text(&valid.status)
            // Declared int64 so the column never narrows; validation keeps it in 32-bit range.
            .int64(valid.last_visited_at.into())
            .boolean(valid.is_blacklisted)
            .finish()?;
    }
    if let Some(rows) = outputs.rows(STATUS_LOGS) {
        rows.row(input, key)
            .text(&valid.user_id)
            // The list is valid JSON already, compacted by validation.
            .json_with(|out| out.extend_from_slice(valid.status_logs.as_bytes()))
            .finish()?;
    }
    Ok(())
}

/// Writes an invalid record's `user_status_error_rec` row: its fields as one line of text.
///
/// # Errors
/// Only a batch too large for the contract's offsets.
pub fn push_error_rec(
    outputs: &mut Outputs,
    input: u32,
    key: Option<&[u8]>,
    error_rec: &str,
) -> Result<(), RowError> {
    match outputs.rows(USER_STATUS_ERROR_REC) {
        Some(rows) => rows.row(input, key).text(error_rec).finish(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use sluice_plugin_sdk::render::result_rows;

    use super::*;

    fn columns_of(output: &str) -> Vec<(String, ColumnType, bool)> {
        let info = declared().into_iter().find(|info| info.name == output).unwrap();
        info.columns.into_iter().map(|column| (column.name, column.type_.into(), column.nullable)).collect()
    }

    fn column(name: &str, column_type: ColumnType) -> (String, ColumnType, bool) {
        (name.to_owned(), column_type, false)
    }

    /// The rows `write` makes, as the JSON objects their outputs render them.
    fn rendered(write: impl FnOnce(&mut Outputs) -> Result<(), RowError>) -> Vec<String> {
        let mut outputs = Outputs::new(OUTPUTS);
        write(&mut outputs).unwrap();
        result_rows(&declared(), &outputs.finish()).unwrap().into_iter().map(|row| row.json).collect()
    }

    fn valid() -> ValidUserStatus<'static> {
        ValidUserStatus {
            user_id: "0000".into(),
            created_at: "2022-02-10T21:09:51Z".into(),
            last_visited_at: 1_644_527_391,
            status: "VERIFIED".into(),
            is_blacklisted: false,
            status_logs: r#"[{"status":"INITIATED"}]"#.into(),
        }
    }

    #[test]
    fn declares_three_outputs() {
        let names: Vec<_> = declared().into_iter().map(|info| info.name).collect();
        assert_eq!(names, [USER_STATUS, STATUS_LOGS, USER_STATUS_ERROR_REC]);
    }

    #[test]
    fn user_status_row_fills_its_columns() {
        assert_eq!(
            columns_of(USER_STATUS),
            [
                column("userId", ColumnType::Text),
                column("createdAt", ColumnType::Text),
                column("status", ColumnType::Text),
                column("lastVisitedAt", ColumnType::Int64),
                column("isBlacklisted", ColumnType::Boolean),
            ]
        );
        let valid = valid();
        assert_eq!(
            rendered(|outputs| push_valid(outputs, 0, None, &valid))[0],
            r#"{"userId":"0000","createdAt":"2022-02-10T21:09:51Z","status":"VERIFIED","lastVisitedAt":1644527391,"isBlacklisted":false}"#
        );
    }

    #[test]
    fn status_logs_row_fills_its_columns_and_is_compact() {
        assert_eq!(
            columns_of(STATUS_LOGS),
            [column("userId", ColumnType::Text), column("statusLogs", ColumnType::Json)]
        );
        // Through validation, which compacts the list, as the plugin's rows are made.
        let record = r#"{"userId":"0000","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,
            "status":"VERIFIED","isBlacklisted":false,"statusLogs":[ {"status": "INITIATED"} ]}"#;
        let fields = crate::user_status::UserStatusFields::read(record.as_bytes()).unwrap();
        let valid = fields.validate().unwrap();
        assert_eq!(
            rendered(|outputs| push_valid(outputs, 0, None, &valid))[1],
            r#"{"userId":"0000","statusLogs":[{"status":"INITIATED"}]}"#
        );
    }

    #[test]
    fn error_rec_row_fills_its_column() {
        assert_eq!(columns_of(USER_STATUS_ERROR_REC), [column("error_rec", ColumnType::Text)]);
        assert_eq!(
            rendered(|outputs| push_error_rec(outputs, 0, None, "userid:null")),
            [r#"{"error_rec":"userid:null"}"#]
        );
    }
}
