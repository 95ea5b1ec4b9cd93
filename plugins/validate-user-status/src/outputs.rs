//! The plugin's named outputs: their schemas and the rows written to them.
//!
//! Each row type serializes its fields in the schema's field order, as the host expects.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;
use sluice_plugin_sdk::OutputInfo;
use sluice_plugin_sdk::json::compact;
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
    Column::required("userId", ColumnType::String),
    Column::required("createdAt", ColumnType::String),
    Column::required("status", ColumnType::String),
    Column::required("lastVisitedAt", ColumnType::Int64),
    Column::required("isBlacklisted", ColumnType::Bool),
];

/// The fields of a [`StatusLogsRow`], in the order it serializes them.
const STATUS_LOGS_COLUMNS: &[Column] =
    &[Column::required("userId", ColumnType::String), Column::required("statusLogs", ColumnType::Json)];

/// The field of an [`ErrorRecRow`].
const USER_STATUS_ERROR_REC_COLUMNS: &[Column] = &[Column::required("error_rec", ColumnType::String)];

/// The outputs this plugin declares in `info()`.
pub fn declared() -> Vec<OutputInfo> {
    vec![
        OutputInfo::new(USER_STATUS, USER_STATUS_COLUMNS),
        OutputInfo::new(STATUS_LOGS, STATUS_LOGS_COLUMNS),
        OutputInfo::new(USER_STATUS_ERROR_REC, USER_STATUS_ERROR_REC_COLUMNS),
    ]
}

/// A `user_status` row: the user's latest status, without the logs.
#[derive(Debug, Serialize)]
pub struct UserStatusRow<'a> {
    #[serde(rename = "userId")]
    user_id: &'a str,
    #[serde(rename = "createdAt")]
    created_at: &'a str,
    status: &'a str,
    /// Declared int64 so the schema never narrows; validation already keeps it in 32-bit range.
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
    status_logs: Cow<'a, RawValue>,
}

impl<'a> From<&'a ValidUserStatus<'a>> for StatusLogsRow<'a> {
    fn from(valid: &'a ValidUserStatus<'a>) -> Self {
        StatusLogsRow { user_id: &valid.user_id, status_logs: compact(valid.status_logs) }
    }
}

/// A `user_status_error_rec` row: an invalid record's fields as one line of text.
#[derive(Debug, Serialize)]
pub struct ErrorRecRow {
    pub error_rec: String,
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Schema {
        fields: Vec<Field>,
    }

    #[derive(Deserialize)]
    struct Field {
        name: String,
        r#type: String,
        nullable: bool,
    }

    fn schema_of(output: &str) -> Vec<(String, String, bool)> {
        let info = declared().into_iter().find(|info| info.name == output).unwrap();
        let schema: Schema = serde_json::from_str(&info.schema).unwrap();
        schema.fields.into_iter().map(|f| (f.name, f.r#type, f.nullable)).collect()
    }

    fn field(name: &str, r#type: &str) -> (String, String, bool) {
        (name.to_owned(), r#type.to_owned(), false)
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
    fn user_status_row_follows_its_schema() {
        assert_eq!(
            schema_of(USER_STATUS),
            [
                field("userId", "string"),
                field("createdAt", "string"),
                field("status", "string"),
                field("lastVisitedAt", "int64"),
                field("isBlacklisted", "bool"),
            ]
        );
        let valid = valid();
        assert_eq!(
            serde_json::to_string(&UserStatusRow::from(&valid)).unwrap(),
            r#"{"userId":"0000","createdAt":"2022-02-10T21:09:51Z","status":"VERIFIED","lastVisitedAt":1644527391,"isBlacklisted":false}"#
        );
    }

    #[test]
    fn status_logs_row_follows_its_schema_and_is_compact() {
        assert_eq!(schema_of(STATUS_LOGS), [field("userId", "string"), field("statusLogs", "json")]);
        let valid = valid();
        assert_eq!(
            serde_json::to_string(&StatusLogsRow::from(&valid)).unwrap(),
            r#"{"userId":"0000","statusLogs":[{"status":"INITIATED"}]}"#
        );
    }

    #[test]
    fn error_rec_row_follows_its_schema() {
        assert_eq!(schema_of(USER_STATUS_ERROR_REC), [field("error_rec", "string")]);
        let row = ErrorRecRow { error_rec: "userid:null".to_owned() };
        assert_eq!(serde_json::to_string(&row).unwrap(), r#"{"error_rec":"userid:null"}"#);
    }
}
