//! The plugin's one output, `user_status_log`: its columns and its rows.

use sluice_plugin_sdk::OutputInfo;

/// One row per status log entry, for the `user_status_log` table.
pub const USER_STATUS_LOG: &str = "user_status_log";

sluice_plugin_sdk::row_type! {
    /// A `user_status_log` row, its fields in the columns' order; `None` is a null.
    ///
    /// `updatedOn` and `status` are nullable because every entry becomes a row, even one that
    /// lacks them, as the original job's `explode` did.
    #[derive(Debug)]
    pub struct UserStatusLogRow<'a> {
        #[column("userId", Text)]
        pub user_id: &'a str,
        #[column("updatedOn", Text, nullable)]
        pub updated_on: Option<&'a str>,
        #[column("status", Text, nullable)]
        pub status: Option<&'a str>,
    }
}

/// The columns of a `user_status_log` row.
pub const USER_STATUS_LOG_COLUMNS: &[sluice_plugin_sdk::schema::Column] = UserStatusLogRow::COLUMNS;

/// The outputs this plugin declares in `info()`.
pub fn declared() -> Vec<OutputInfo> {
    vec![OutputInfo::new(USER_STATUS_LOG, USER_STATUS_LOG_COLUMNS)]
}

#[cfg(test)]
mod tests {
    use sluice_plugin_sdk::OutputRows;
    use sluice_plugin_sdk::render::rows_json;
    use sluice_plugin_sdk::schema::ColumnType;

    use super::*;

    #[test]
    fn declares_one_output_with_three_text_columns_two_of_them_nullable() {
        let outputs = declared();
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0].name, USER_STATUS_LOG);
        let columns: Vec<_> = outputs[0]
            .columns
            .iter()
            .map(|column| (column.name.as_str(), ColumnType::from(column.type_), column.nullable))
            .collect();
        assert_eq!(
            columns,
            [
                ("userId", ColumnType::Text, false),
                ("updatedOn", ColumnType::Text, true),
                ("status", ColumnType::Text, true)
            ]
        );
    }

    fn rendered(row: &UserStatusLogRow) -> String {
        let mut rows = OutputRows::new(USER_STATUS_LOG, USER_STATUS_LOG_COLUMNS);
        rows.push(0, None, row).unwrap();
        rows_json(&declared()[0], &rows.finish()).unwrap().remove(0)
    }

    #[test]
    fn row_fills_the_columns_in_order() {
        let row =
            UserStatusLogRow { user_id: "0000", updated_on: Some("1644527391"), status: Some("INITIATED") };
        assert_eq!(rendered(&row), r#"{"userId":"0000","updatedOn":"1644527391","status":"INITIATED"}"#);
    }

    #[test]
    fn missing_values_are_nulls() {
        let row = UserStatusLogRow { user_id: "0000", updated_on: None, status: None };
        assert_eq!(rendered(&row), r#"{"userId":"0000"}"#);
    }
}
