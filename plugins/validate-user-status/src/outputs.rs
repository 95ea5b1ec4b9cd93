//! The plugin's named outputs: their columns and the rows written to them.
//!
//! Each row type serializes its fields in its output's column order, as `OutputRows` checks.

use serde::Serialize;
use serde_json::value::RawValue;
use sluice_plugin_sdk::OutputInfo;
use sluice_plugin_sdk::schema::{Column, ColumnType};

use crate::user_status::ValidUserStatus;

/// Valid records, one row each, for the `user_status` table.
pub const USER_STATUS: &str = "user_status";
/// Valid records' status logs, for `explode-status-logs`.
pub const STATUS_LOGS: &str = "status_logs";
/// Invalid records, one text row each, for the `user_status_error_rec` table.
pub const USER_STATUS_ERROR_REC: &str = "user_status_error_rec";

/// The fields of a [`UserStatusRow`], in the order it serializes them.
const USER_STATUS_COLUMNS: &[Column] = &[
    Column::required("userId", ColumnType::Text),
    Column::required("createdAt", ColumnType::Text),
    Column::required("status", ColumnType::Text),
    Column::required("lastVisitedAt", ColumnType::Int64),
    Column::required("isBlacklisted", ColumnType::Boolean),
];

/// The fields of a [`StatusLogsRow`], in the order it serializes them.
const STATUS_LOGS_COLUMNS: &[Column] =
    &[Column::required("userId", ColumnType::Text), Column::required("statusLogs", ColumnType::Json)];

/// The field of an [`ErrorRecRow`].
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

/// A `user_status` row: the user's latest status, without the logs.
#[derive(Debug, Serialize)]
pub struct UserStatusRow<'a> {
    #[serde(rename = "userId")]
    user_id: &'a str,
    #[serde(rename = "createdAt")]
    created_at: &'a str,
    status: &'a str,
    /// Declared int64 so the column never narrows; validation already keeps it in 32-bit range.
    #[serde(rename = "lastVisitedAt")]
    last_visited_at: i64,
    #[serde(rename = "isBlacklisted")]
    is_blacklisted: bool,
}

impl<'a> From<&'a ValidUserStatus<'a>> for UserStatusRow<'a> {
    fn from(valid: &'a ValidUserStatus<'a>) -> Self {
        UserStatusRow {
            user_id: &valid.user_id,
            created_at: &valid.created_at,
            status: &valid.status,
            last_visited_at: valid.last_visited_at.into(),
            is_blacklisted: valid.is_blacklisted,
        }
    }
}

/// A `status_logs` record: the user and their status history, still as JSON.
#[derive(Debug, Serialize)]
pub struct StatusLogsRow<'a> {
    #[serde(rename = "userId")]
    user_id: &'a str,
    #[serde(rename = "statusLogs")]
    status_logs: &'a RawValue,
}

impl<'a> From<&'a ValidUserStatus<'a>> for StatusLogsRow<'a> {
    fn from(valid: &'a ValidUserStatus<'a>) -> Self {
        StatusLogsRow { user_id: &valid.user_id, status_logs: &valid.status_logs }
    }
}

/// A `user_status_error_rec` row: an invalid record's fields as one line of text.
#[derive(Debug, Serialize)]
pub struct ErrorRecRow {
    pub error_rec: String,
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use sluice_plugin_sdk::Outputs;
    use sluice_plugin_sdk::render::result_rows;

    use super::*;

    fn columns_of(output: &str) -> Vec<(String, ColumnType, bool)> {
        let info = declared().into_iter().find(|info| info.name == output).unwrap();
        info.columns.into_iter().map(|column| (column.name, column.type_.into(), column.nullable)).collect()
    }

    fn column(name: &str, column_type: ColumnType) -> (String, ColumnType, bool) {
        (name.to_owned(), column_type, false)
    }

    /// `row` as the JSON object `output` renders it.
    fn rendered(output: &str, row: &impl Serialize) -> String {
        let mut outputs = Outputs::new(OUTPUTS);
        outputs.push(output, 0, None, row).unwrap();
        result_rows(&declared(), &outputs.finish()).unwrap().remove(0).json
    }

    fn valid() -> ValidUserStatus<'static> {
        ValidUserStatus {
            user_id: "0000".into(),
            created_at: "2022-02-10T21:09:51Z".into(),
            last_visited_at: 1_644_527_391,
            status: "VERIFIED".into(),
            is_blacklisted: false,
            status_logs: serde_json::from_str("[ {\"status\": \"INITIATED\"} ]").unwrap(),
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
            rendered(USER_STATUS, &UserStatusRow::from(&valid)),
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
        let fields: crate::user_status::UserStatusFields =
            sluice_plugin_sdk::json::parse_object(record.as_bytes()).unwrap();
        let valid = fields.validate().unwrap();
        assert_eq!(
            rendered(STATUS_LOGS, &StatusLogsRow::from(&valid)),
            r#"{"userId":"0000","statusLogs":[{"status":"INITIATED"}]}"#
        );
    }

    #[test]
    fn error_rec_row_fills_its_column() {
        assert_eq!(columns_of(USER_STATUS_ERROR_REC), [column("error_rec", ColumnType::Text)]);
        let row = ErrorRecRow { error_rec: "userid:null".to_owned() };
        assert_eq!(rendered(USER_STATUS_ERROR_REC, &row), r#"{"error_rec":"userid:null"}"#);
    }
}
