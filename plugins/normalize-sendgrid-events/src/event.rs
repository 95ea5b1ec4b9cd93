//! The normalized event row: one typed record per SendGrid webhook event.

use std::borrow::Cow;

use sluice_plugin_sdk::{OutputRows, RowError};

use crate::date::DateText;
use crate::wire::{Member, Value};

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

/// One SendGrid event with its fields typed, borrowing from the webhook body.
///
/// Its fields are [`COLUMNS`](crate::outputs::COLUMNS) in order, and [`NormalizedEvent::write`] writes them straight
/// into the output's columns; absent optional fields are nulls. JSON-typed columns keep the
/// text SendGrid sent, without insignificant whitespace.
#[derive(Debug)]
pub struct NormalizedEvent<'a, 'b> {
    /// The UTC date of `timestamp`, `YYYY-MM-DD`: the Hive partition the row lands in.
    pub dt: DateText,
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
    pub url_offset: Option<Value<'a>>,
    pub asm_group_id: Option<i64>,
    pub pool: Option<Value<'a>>,
    pub marketing_campaign_id: Option<i64>,
    pub marketing_campaign_name: Option<Cow<'a, str>>,
    /// Every top-level key SendGrid does not define: the sender's custom args, in name order,
    /// each name once.
    pub custom_args: &'b [Member<'a>],
    /// The event as received (compacted), so nothing is lost if a column is added later.
    pub raw: Value<'a>,
}

impl NormalizedEvent<'_, '_> {
    /// Writes the event as one row of [`COLUMNS`](crate::outputs::COLUMNS), keyed by its `sg_event_id`.
    ///
    /// # Errors
    /// Only a batch too large for the contract's offsets.
    pub fn write(&self, rows: &mut OutputRows, input: u32) -> Result<(), RowError> {
        rows.row(input, Some(self.sg_event_id.as_bytes()))
            .text(&self.dt)
            .text(self.event)
            .text(&self.email)
            .int64(self.timestamp)
            .timestamp_ms(self.event_time)
            .text(&self.sg_event_id)
            .opt_text(self.sg_message_id.as_deref())
            .opt_text(self.smtp_id.as_deref())
            .text_list(&self.categories)
            .opt_text(self.reason.as_deref())
            .opt_text(self.status.as_deref())
            .opt_text(self.response.as_deref())
            .opt_text(self.attempt.as_deref())
            .opt_text(self.bounce_type.as_deref())
            .opt_text(self.bounce_classification.as_deref())
            .opt_int32(self.tls)
            .opt_text(self.useragent.as_deref())
            .opt_text(self.ip.as_deref())
            .opt_text(self.url.as_deref())
            .json_with(|out| write_optional(self.url_offset, out))
            .opt_int64(self.asm_group_id)
            .json_with(|out| write_optional(self.pool, out))
            .opt_int64(self.marketing_campaign_id)
            .opt_text(self.marketing_campaign_name.as_deref())
            .json_with(|out| write_object(self.custom_args, out))
            .json_with(|out| self.raw.write_compact(out))
            .finish()
    }
}

/// A json column's value, compacted, or nothing (null).
fn write_optional(value: Option<Value<'_>>, out: &mut Vec<u8>) {
    if let Some(value) = value {
        value.write_compact(out);
    }
}

/// `{"name":value,...}` of `members`, each value compacted.
fn write_object(members: &[Member<'_>], out: &mut Vec<u8>) {
    out.push(b'{');
    for (position, (name, value)) in members.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        write_string(name, out);
        out.push(b':');
        value.write_compact(out);
    }
    out.push(b'}');
}

/// `text` as a JSON string, escaped as serde_json escapes it.
fn write_string(text: &str, out: &mut Vec<u8>) {
    if text.bytes().any(|byte| byte == b'"' || byte == b'\\' || byte < 0x20) {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}
