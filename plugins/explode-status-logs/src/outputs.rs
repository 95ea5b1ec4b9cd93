//! The plugin's one output, `user_status_log`: its schema and its rows.

use serde::Serialize;
use sluice_plugin_sdk::OutputInfo;
use sluice_plugin_sdk::schema::{Column, ColumnType};

/// One row per status log entry, for the `user_status_log` table.
pub const USER_STATUS_LOG: &str = "user_status_log";

/// The fields of a [`UserStatusLogRow`], in the order it serializes them.
///
/// `updatedOn` and `status` are nullable because every entry becomes a row, even one that lacks
/// them, as the original job's `explode` did.
const USER_STATUS_LOG_COLUMNS: &[Column] = &[
    Column::required("userId", ColumnType::String),
    Column::nullable("updatedOn", ColumnType::String),
    Column::nullable("status", ColumnType::String),
];

/// The outputs this plugin declares in `info()`.
pub fn declared() -> Vec<OutputInfo> {
    vec![OutputInfo::new(USER_STATUS_LOG, USER_STATUS_LOG_COLUMNS)]
}

/// A `user_status_log` row, its fields in the schema's order; `None` is written as `null`.
#[derive(Debug, Serialize)]
pub struct UserStatusLogRow<'a> {
    #[serde(rename = "userId")]
    pub user_id: &'a str,
    #[serde(rename = "updatedOn")]
    pub updated_on: Option<&'a str>,
    pub status: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declares_one_output_with_three_string_fields_two_of_them_nullable() {
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
            [("userId", "string", false), ("updatedOn", "string", true), ("status", "string", true)]
        );
    }

    #[test]
    fn row_follows_the_schema_order() {
        let row =
            UserStatusLogRow { user_id: "0000", updated_on: Some("1644527391"), status: Some("INITIATED") };
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"userId":"0000","updatedOn":"1644527391","status":"INITIATED"}"#
        );
    }

    #[test]
    fn missing_values_are_written_as_null() {
        let row = UserStatusLogRow { user_id: "0000", updated_on: None, status: None };
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"userId":"0000","updatedOn":null,"status":null}"#
        );
    }
}
