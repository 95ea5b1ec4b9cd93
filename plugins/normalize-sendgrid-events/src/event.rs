//! The normalized event row: one typed record per SendGrid webhook event.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;
use sluice_plugin_sdk::schema::{Column, ColumnType};

/// The output that carries normalized events.
pub const OUTPUT: &str = "events";

/// The event types SendGrid's event webhook sends; anything else is refused so a typo or a new
/// type shows up in the dead letters instead of as a new partition nobody queries.
pub const EVENT_TYPES: [&str; 11] = [
    "processed",
    "dropped",
    "delivered",
    "deferred",
    "bounce",
    "open",
    "click",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
];

/// Top-level keys SendGrid itself puts on events. Every other top-level key is one of the
/// sender's custom args (SendGrid flattens them into the event). Fields listed here without a
/// column of their own stay available in `raw`.
pub const SENDGRID_FIELDS: &[&str] = &[
    "asm_group_id",
    "attempt",
    "bounce_classification",
    "category",
    "cert_err",
    "email",
    "event",
    "ip",
    "marketing_campaign_id",
    "marketing_campaign_name",
    "marketing_campaign_split_id",
    "marketing_campaign_version",
    "mc_stats",
    "phase_id",
    "pool",
    "post_type",
    "reason",
    "response",
    "send_at",
    "sg_content_type",
    "sg_event_id",
    "sg_machine_open",
    "sg_message_id",
    "sg_template_id",
    "sg_template_name",
    "singlesend_id",
    "singlesend_name",
    "smtp-id",
    "status",
    "template_hash",
    "template_id",
    "template_version_id",
    "timestamp",
    "tls",
    "type",
    "url",
    "url_offset",
    "useragent",
];

/// The fields of a [`NormalizedEvent`], in the order it serializes them.
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
    Column::required("raw", ColumnType::Json),
];

/// One SendGrid event with its fields typed, borrowing from the webhook body.
///
/// Its fields are [`COLUMNS`] in order, so it is written straight into the output's columns;
/// absent optional fields are nulls. JSON-typed columns keep the text SendGrid sent, without
/// insignificant whitespace.
#[derive(Debug, Serialize)]
pub struct NormalizedEvent<'a> {
    /// The UTC date of `timestamp`, `YYYY-MM-DD`: the Hive partition the row lands in.
    pub dt: String,
    /// One of [`EVENT_TYPES`].
    pub event: &'static str,
    pub email: Cow<'a, str>,
    /// Unix seconds, as SendGrid sends them.
    pub timestamp: i64,
    /// `timestamp` in milliseconds, for engines that want a real timestamp column.
    pub event_time: i64,
    /// SendGrid's unique id of the event; retried webhooks repeat it, so rows dedupe on it.
    pub sg_event_id: Cow<'a, str>,
    pub sg_message_id: Option<Cow<'a, str>>,
    pub smtp_id: Option<Cow<'a, str>>,
    /// SendGrid sends one category as a string and several as an array; always a list here.
    pub categories: Vec<Cow<'a, str>>,
    pub reason: Option<Cow<'a, str>>,
    pub status: Option<Cow<'a, str>>,
    pub response: Option<Cow<'a, str>>,
    /// SendGrid sends the attempt count as a string; a number is accepted and written as text.
    pub attempt: Option<Cow<'a, str>>,
    /// `bounce` or `blocked` (SendGrid's `type`), on bounce events only.
    pub bounce_type: Option<Cow<'a, str>>,
    pub bounce_classification: Option<Cow<'a, str>>,
    pub tls: Option<i32>,
    pub useragent: Option<Cow<'a, str>>,
    pub ip: Option<Cow<'a, str>>,
    pub url: Option<Cow<'a, str>>,
    pub url_offset: Option<Cow<'a, RawValue>>,
    pub asm_group_id: Option<i64>,
    pub pool: Option<Cow<'a, RawValue>>,
    pub marketing_campaign_id: Option<i64>,
    pub marketing_campaign_name: Option<Cow<'a, str>>,
    /// Every top-level key SendGrid does not define: the sender's custom args.
    pub custom_args: BTreeMap<Cow<'a, str>, Cow<'a, RawValue>>,
    /// The event as received (compacted), so nothing is lost if a column is added later.
    pub raw: Cow<'a, RawValue>,
}
