//! The plugin's one output, `user_status_log`: its schema and its rows.

use serde::Serialize;
use sluice_plugin_sdk::OutputInfo;
use sluice_plugin_sdk::schema::{Column, ColumnType};

/// One row per status log entry, for the `user_status_log` table.
pub const USER_STATUS_LOG: &str = "user_status_log";

/// The fields of a [`UserStatusLogRow`], in the order it serializes them.
const USER_STATUS_LOG_COLUMNS: &[Column] = &[
    Column::required("userId", ColumnType::String),
    Column::required("updatedOn", ColumnType::String),
    Column::required("status", ColumnType::String),
];

/// The outputs this plugin declares in `info()`.
pub fn declared() -> Vec<OutputInfo> {
    vec![OutputInfo::new(USER_STATUS_LOG, USER_STATUS_LOG_COLUMNS)]
}

/// A `user_status_log` row, its fields in the schema's order.
#[derive(Debug, Serialize)]
pub struct UserStatusLogRow<'a> {
    #[serde(rename = "userId")]
    pub user_id: &'a str,
    #[serde(rename = "updatedOn")]
    pub updated_on: &'a str,
    pub status: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declares_one_output_with_three_string_fields() {
        let outputs = declared();
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0].name, USER_STATUS_LOG);
        let schema: serde_json::Value = serde_json::from_str(&outputs[0].schema).unwrap();
        let fields: Vec<_> = schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (f["name"].as_str().unwrap(), f["type"].as_str().unwrap(), f["nullable"].as_bool().unwrap())
            })
            .collect();
        assert_eq!(
            fields,
            [("userId", "string", false), ("updatedOn", "string", false), ("status", "string", false)]
        );
    }

    #[test]
    fn row_follows_the_schema_order() {
        let row = UserStatusLogRow { user_id: "0000", updated_on: "1644527391", status: "INITIATED" };
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"userId":"0000","updatedOn":"1644527391","status":"INITIATED"}"#
        );
    }
}
