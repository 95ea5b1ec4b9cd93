//! The plugin's one output, `events`: one row per SendGrid event (the row type is
//! `crate::event::NormalizedEvent`). This file depends on the SDK alone, so a test fixture
//! standing in for the plugin can declare the same columns by including it.

use sluice_plugin_sdk::OutputInfo;
use sluice_plugin_sdk::schema::{Column, ColumnType};

/// The output that carries normalized events.
pub const OUTPUT: &str = "events";

/// The column that keeps each event's text as it came.
pub const RAW_COLUMN: &str = "raw";

/// The columns of `events`: the fields of a [`NormalizedEvent`](crate::event::NormalizedEvent),
/// in the order it writes them.
pub const COLUMNS: &[Column] = &[
    Column::required("dt", ColumnType::Text),
    Column::required("event", ColumnType::Text),
    Column::required("email", ColumnType::Text),
    Column::required("timestamp", ColumnType::Int64),
    Column::required("event_time", ColumnType::TimestampMs),
    Column::required("sg_event_id", ColumnType::Text),
    Column::nullable("sg_message_id", ColumnType::Text),
    Column::nullable("smtp_id", ColumnType::Text),
    Column::required("categories", ColumnType::TextList),
    Column::nullable("reason", ColumnType::Text),
    Column::nullable("status", ColumnType::Text),
    Column::nullable("response", ColumnType::Text),
    Column::nullable("attempt", ColumnType::Text),
    Column::nullable("bounce_type", ColumnType::Text),
    Column::nullable("bounce_classification", ColumnType::Text),
    Column::nullable("tls", ColumnType::Int32),
    Column::nullable("useragent", ColumnType::Text),
    Column::nullable("ip", ColumnType::Text),
    Column::nullable("url", ColumnType::Text),
    Column::nullable("url_offset", ColumnType::Json),
    Column::nullable("asm_group_id", ColumnType::Int64),
    Column::nullable("pool", ColumnType::Json),
    Column::nullable("marketing_campaign_id", ColumnType::Int64),
    Column::nullable("marketing_campaign_name", ColumnType::Text),
    Column::required("custom_args", ColumnType::Json),
    Column::required(RAW_COLUMN, ColumnType::Json),
];

/// The outputs this plugin declares in `info()`.
pub fn declared() -> Vec<OutputInfo> {
    vec![OutputInfo::new(OUTPUT, COLUMNS)]
}
