//! Reading one SendGrid event object into a [`NormalizedEvent`], checking each field's type.
//!
//! A field of the wrong type is an error naming the field rather than a silent `null`: such an
//! event goes to the dead letters and can be swept once the plugin learns the new shape.

use std::borrow::Cow;

use sluice_plugin_sdk::json::scan::Kind;
use thiserror::Error;

use crate::date::utc_date;
use crate::event::{EVENT_TYPES, NormalizedEvent};
use crate::fields::{EventFields, Field};
use crate::wire::{Element, Value, string_array};

/// Why event `element` of a webhook body was not normalized; shown as `[3].sg_event_id: required`.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{}: {problem}", self.path())]
pub struct ElementError {
    /// The event's position in the body's array.
    pub element: usize,
    /// The top-level key at fault, if one is.
    pub field: Option<&'static str>,
    pub problem: String,
}

impl ElementError {
    /// Where the problem is in the body: `[3].sg_event_id`, or `[3]` for the whole event.
    pub fn path(&self) -> String {
        match self.field {
            Some(field) => format!("[{}].{field}", self.element),
            None => format!("[{}]", self.element),
        }
    }
}

/// Types event `position` of a body: `element` as read, its members in `fields`.
///
/// # Errors
/// The element is not an object, a required field (email, event, timestamp, sg_event_id) is
/// missing, the event type is not one SendGrid sends, the timestamp is outside 1970..=9999, or
/// a field has the wrong type.
pub fn normalize_event<'a, 'b>(
    element: &Element<'a>,
    fields: &'b mut EventFields<'a>,
    position: usize,
) -> Result<NormalizedEvent<'a, 'b>, ElementError> {
    let checker = FieldChecker { element: position };
    let (text, spaced) = match element {
        Element::Object { text, spaced } => (*text, *spaced),
        Element::NotObject { .. } => return Err(checker.element_error("not a JSON object".to_owned())),
        Element::Unreadable { reason, .. } => {
            return Err(checker.element_error(format!("not valid JSON: {reason}")));
        }
    };
    let field = |name| fields.get(name);
    let email = checker.required_string("email", field(Field::Email))?;
    let event = checker.event_type(field(Field::Event))?;
    let timestamp = checker.timestamp(field(Field::Timestamp))?;
    let sg_event_id = checker.required_string("sg_event_id", field(Field::SgEventId))?;
    let dt = utc_date(timestamp).map_err(|error| checker.error("timestamp", error.to_string()))?;
    let tls = match checker.optional_integer("tls", field(Field::Tls))? {
        None => None,
        Some(tls) => Some(
            i32::try_from(tls)
                .map_err(|_| checker.error("tls", format!("out of range (SendGrid sends 0 or 1): {tls}")))?,
        ),
    };
    let bounce_type =
        if event == "bounce" { checker.optional_string("type", field(Field::BounceType))? } else { None };
    let optional_string = |name: &'static str, key| checker.optional_string(name, field(key));
    let event = NormalizedEvent {
        dt,
        event,
        email,
        timestamp,
        // In range: the timestamp is at most year 9999 in seconds.
        event_time: timestamp * 1000,
        sg_event_id,
        sg_message_id: optional_string("sg_message_id", Field::SgMessageId)?,
        smtp_id: optional_string("smtp-id", Field::SmtpId)?,
        categories: checker.categories(field(Field::Category))?,
        reason: optional_string("reason", Field::Reason)?,
        status: optional_string("status", Field::Status)?,
        response: optional_string("response", Field::Response)?,
        attempt: checker.attempt(field(Field::Attempt))?,
        bounce_type,
        bounce_classification: optional_string("bounce_classification", Field::BounceClassification)?,
        tls,
        useragent: optional_string("useragent", Field::Useragent)?,
        ip: optional_string("ip", Field::Ip)?,
        url: optional_string("url", Field::Url)?,
        url_offset: field(Field::UrlOffset),
        asm_group_id: checker.optional_integer("asm_group_id", field(Field::AsmGroupId))?,
        pool: field(Field::Pool),
        marketing_campaign_id: checker
            .optional_integer("marketing_campaign_id", field(Field::MarketingCampaignId))?,
        marketing_campaign_name: optional_string("marketing_campaign_name", Field::MarketingCampaignName)?,
        custom_args: &[],
        raw: Value { text, kind: Kind::Object, escaped: false, spaced },
    };
    let custom_args = &mut fields.custom_args;
    // As a map of the names: in name order, and a repeated name keeps its last value.
    if !custom_args.is_sorted_by(|(a, _), (b, _)| a < b) {
        custom_args.sort_by(|(a, _), (b, _)| a.cmp(b));
        custom_args.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
    }
    Ok(NormalizedEvent { custom_args, ..event })
}

/// Typed reading of one event's fields, producing errors that name the event and field.
struct FieldChecker {
    element: usize,
}

impl FieldChecker {
    fn error(&self, field: &'static str, problem: impl Into<String>) -> ElementError {
        ElementError { element: self.element, field: Some(field), problem: problem.into() }
    }

    fn element_error(&self, problem: String) -> ElementError {
        ElementError { element: self.element, field: None, problem }
    }

    fn optional_string<'a>(
        &self,
        field: &'static str,
        value: Option<Value<'a>>,
    ) -> Result<Option<Cow<'a, str>>, ElementError> {
        value.map(|value| value.string().ok_or_else(|| self.error(field, "must be a string"))).transpose()
    }

    /// A string that must be present and non-empty.
    fn required_string<'a>(
        &self,
        field: &'static str,
        value: Option<Value<'a>>,
    ) -> Result<Cow<'a, str>, ElementError> {
        match self.optional_string(field, value)? {
            Some(text) if !text.is_empty() => Ok(text),
            _ => Err(self.error(field, "required")),
        }
    }

    fn event_type(&self, value: Option<Value<'_>>) -> Result<&'static str, ElementError> {
        let event = self.required_string("event", value)?;
        EVENT_TYPES.into_iter().find(|known| *known == event).ok_or_else(|| {
            self.error(
                "event",
                format!("unknown event type `{event}`; expected one of {}", EVENT_TYPES.join(", ")),
            )
        })
    }

    /// An integer sent as a JSON number or as a string of digits.
    fn optional_integer(
        &self,
        field: &'static str,
        value: Option<Value<'_>>,
    ) -> Result<Option<i64>, ElementError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let integer = match value.kind {
            Kind::Number => whole_number(value.text),
            Kind::String => value.string().and_then(|text| text.trim().parse().ok()),
            _ => None,
        };
        integer.map(Some).ok_or_else(|| self.error(field, "must be an integer"))
    }

    /// Unix seconds; a fractional number is accepted and rounded down to its second.
    fn timestamp(&self, value: Option<Value<'_>>) -> Result<i64, ElementError> {
        let Some(value) = value else {
            return Err(self.error("timestamp", "required"));
        };
        let seconds = match value.kind {
            Kind::Number => seconds(value.text),
            _ => None,
        };
        seconds.ok_or_else(|| {
            self.error("timestamp", "must be a number (unix seconds), not a string or other value")
        })
    }

    /// SendGrid sends one category as a string and several as an array.
    fn categories<'a>(&self, value: Option<Value<'a>>) -> Result<Vec<Cow<'a, str>>, ElementError> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let categories = match value.kind {
            Kind::String => value.string().map(|category| vec![category]),
            Kind::Array => string_array(&value),
            _ => None,
        };
        categories.ok_or_else(|| self.error("category", "must be a string or an array of strings"))
    }

    fn attempt<'a>(&self, value: Option<Value<'a>>) -> Result<Option<Cow<'a, str>>, ElementError> {
        match value {
            None => Ok(None),
            Some(value) if value.kind == Kind::String => Ok(value.string()),
            Some(value) if value.kind == Kind::Number => Ok(Some(Cow::Borrowed(value.text))),
            Some(_) => Err(self.error("attempt", "must be a string or a number")),
        }
    }
}

/// The digits of a plain non-negative integer of at most 18 digits (so it fits an i64): the
/// numbers SendGrid sends, read without serde_json.
fn plain_integer(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0, |value, digit| value * 10 + i64::from(digit - b'0')))
}

/// A JSON number's value as serde_json reads it, or `None` when serde_json cannot (out of range).
fn number(text: &str) -> Option<serde_json::Number> {
    serde_json::from_str(text).ok()
}

/// Unix seconds of a JSON number: a huge integer stays huge (and the date check refuses it),
/// a fraction is rounded down.
fn seconds(text: &str) -> Option<i64> {
    if let Some(seconds) = plain_integer(text) {
        return Some(seconds);
    }
    let seconds = number(text)?;
    // Beyond i64 (a huge u64) or fractional: the saturating cast keeps huge values huge,
    // and the date check refuses them.
    Some(
        seconds
            .as_i64()
            .unwrap_or_else(|| seconds.as_f64().map_or(i64::MAX, |seconds| seconds.floor() as i64)),
    )
}

/// The number as an i64 if it is a whole number in range (`5` or `5.0`, not `5.5`).
fn whole_number(text: &str) -> Option<i64> {
    if let Some(integer) = plain_integer(text) {
        return Some(integer);
    }
    let number = number(text)?;
    number.as_i64().or_else(|| {
        number.as_f64().filter(|value| value.fract() == 0.0 && value.abs() < 9.0e18).map(|value| value as i64)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use sluice_plugin_sdk::render::result_rows;
    use sluice_plugin_sdk::{BatchResult, OutputRows};

    use super::*;
    use crate::wire::read_body;

    /// Normalizes `value` as event 0 of a body and returns the row as JSON, every column
    /// present (a null one as `null`), or the error text.
    fn normalized(value: Value) -> Result<Value, String> {
        let text = format!("[{value}]");
        let mut rows = OutputRows::new(crate::outputs::OUTPUT, crate::outputs::COLUMNS);
        let read = read_body(&text, &mut EventFields::default(), |element, fields| {
            let event = normalize_event(&element, fields, 0).map_err(|error| error.to_string())?;
            event.write(&mut rows, 0).map_err(|error| error.to_string())
        });
        read.map_err(|_| "not a JSON array".to_owned())??;
        let result = BatchResult { outputs: vec![rows.finish()], failures: Vec::new() };
        let rendered = result_rows(&crate::outputs::declared(), &result)?.remove(0).value();
        Ok(crate::outputs::COLUMNS
            .iter()
            .map(|column| (column.name.to_owned(), rendered.get(column.name).cloned().unwrap_or(Value::Null)))
            .collect::<serde_json::Map<_, _>>()
            .into())
    }

    fn reason(value: Value) -> String {
        match normalized(value) {
            Ok(row) => panic!("expected a failure, got {row}"),
            Err(reason) => reason,
        }
    }

    fn delivered() -> Value {
        json!({
            "email": "ann@example.com",
            "timestamp": 1_513_299_569,
            "event": "delivered",
            "sg_event_id": "ev-1"
        })
    }

    fn with(mut event: Value, key: &str, value: Value) -> Value {
        event[key] = value;
        event
    }

    #[test]
    fn minimal_event_fills_every_column() {
        let event = delivered();
        assert_eq!(
            normalized(event.clone()),
            Ok(json!({
                "dt": "2017-12-15",
                "event": "delivered",
                "email": "ann@example.com",
                "timestamp": 1_513_299_569,
                "event_time": 1_513_299_569_000_i64,
                "sg_event_id": "ev-1",
                "sg_message_id": null,
                "smtp_id": null,
                "categories": [],
                "reason": null,
                "status": null,
                "response": null,
                "attempt": null,
                "bounce_type": null,
                "bounce_classification": null,
                "tls": null,
                "useragent": null,
                "ip": null,
                "url": null,
                "url_offset": null,
                "asm_group_id": null,
                "pool": null,
                "marketing_campaign_id": null,
                "marketing_campaign_name": null,
                "custom_args": {},
                "raw": event
            }))
        );
    }

    #[test]
    fn rich_event_types_every_field() {
        let event = json!({
            "email": "ann@example.com",
            "timestamp": 1_700_000_000,
            "event": "click",
            "sg_event_id": "ev-2",
            "sg_message_id": "msg-1",
            "smtp-id": "<abc@ismtpd>",
            "category": ["orders", "receipts"],
            "useragent": "Mozilla/5.0",
            "ip": "192.0.2.1",
            "url": "https://example.com/a",
            "url_offset": {"index": 0, "type": "html"},
            "asm_group_id": "12",
            "pool": {"name": "transactional", "id": 3},
            "marketing_campaign_id": 77,
            "marketing_campaign_name": "Spring",
            "tls": 1,
            "attempt": 2,
            "sg_machine_open": false,
            "mail_id": "id-1",
            "tenant": {"id": 9}
        });
        let Ok(row) = normalized(event) else {
            panic!("expected a row");
        };
        assert_eq!(row["dt"], json!("2023-11-14"));
        assert_eq!(row["smtp_id"], json!("<abc@ismtpd>"));
        assert_eq!(row["categories"], json!(["orders", "receipts"]));
        assert_eq!(row["url_offset"], json!({"index": 0, "type": "html"}));
        assert_eq!(row["asm_group_id"], json!(12));
        assert_eq!(row["pool"], json!({"name": "transactional", "id": 3}));
        assert_eq!(row["marketing_campaign_id"], json!(77));
        assert_eq!(row["tls"], json!(1));
        assert_eq!(row["attempt"], json!("2"));
        assert_eq!(row["custom_args"], json!({"mail_id": "id-1", "tenant": {"id": 9}}));
    }

    #[test]
    fn single_category_string_becomes_a_list() {
        let row = normalized(with(delivered(), "category", json!("orders")));
        assert_eq!(row.map(|row| row["categories"].clone()), Ok(json!(["orders"])));
    }

    #[test]
    fn bounce_type_comes_from_type_on_bounces_only() {
        let bounce = with(with(delivered(), "event", json!("bounce")), "type", json!("blocked"));
        let row = normalized(with(bounce, "bounce_classification", json!("Reputation")));
        let Ok(row) = row else {
            panic!("expected a row");
        };
        assert_eq!(row["bounce_type"], json!("blocked"));
        assert_eq!(row["bounce_classification"], json!("Reputation"));
        let row = normalized(with(delivered(), "type", json!("whatever")));
        assert_eq!(row.map(|row| row["bounce_type"].clone()), Ok(Value::Null));
    }

    #[test]
    fn required_fields_are_named() {
        for field in ["email", "event", "timestamp", "sg_event_id"] {
            let mut event = delivered();
            event.as_object_mut().map(|fields| fields.remove(field));
            assert_eq!(reason(event), format!("[0].{field}: required"));
        }
        assert_eq!(reason(with(delivered(), "sg_event_id", json!(""))), "[0].sg_event_id: required");
        assert_eq!(reason(with(delivered(), "email", Value::Null)), "[0].email: required");
    }

    #[test]
    fn unknown_event_type_is_refused() {
        assert_eq!(
            reason(with(delivered(), "event", json!("opened"))),
            "[0].event: unknown event type `opened`; expected one of processed, dropped, \
             delivered, deferred, bounce, open, click, spamreport, unsubscribe, \
             group_unsubscribe, group_resubscribe"
        );
    }

    #[test]
    fn every_known_event_type_is_accepted() {
        for event_type in EVENT_TYPES {
            assert!(normalized(with(delivered(), "event", json!(event_type))).is_ok());
        }
    }

    #[test]
    fn timestamp_must_be_a_number_in_range() {
        assert_eq!(
            reason(with(delivered(), "timestamp", json!("1513299569"))),
            "[0].timestamp: must be a number (unix seconds), not a string or other value"
        );
        assert_eq!(
            reason(with(delivered(), "timestamp", json!(-5))),
            "[0].timestamp: before 1970-01-01, so not a SendGrid event time"
        );
        assert_eq!(
            reason(with(delivered(), "timestamp", json!(253_402_300_800_i64))),
            "[0].timestamp: after the year 9999"
        );
        assert_eq!(
            reason(with(delivered(), "timestamp", json!(u64::MAX))),
            "[0].timestamp: after the year 9999"
        );
        assert_eq!(
            reason(with(delivered(), "timestamp", json!(1e300))),
            "[0].timestamp: after the year 9999"
        );
        let row = normalized(with(delivered(), "timestamp", json!(1_513_299_569.9)));
        assert_eq!(
            row.map(|row| (row["timestamp"].clone(), row["event_time"].clone())),
            Ok((json!(1_513_299_569), json!(1_513_299_569_000_i64)))
        );
    }

    #[test]
    fn wrongly_typed_fields_are_named() {
        let cases = [
            ("asm_group_id", json!("twelve"), "[0].asm_group_id: must be an integer"),
            ("asm_group_id", json!(1.5), "[0].asm_group_id: must be an integer"),
            ("marketing_campaign_id", json!([1]), "[0].marketing_campaign_id: must be an integer"),
            ("tls", json!(true), "[0].tls: must be an integer"),
            ("category", json!(["a", 1]), "[0].category: must be a string or an array of strings"),
            ("category", json!({"a": 1}), "[0].category: must be a string or an array of strings"),
            ("attempt", json!(["5"]), "[0].attempt: must be a string or a number"),
            ("reason", json!(5), "[0].reason: must be a string"),
            ("smtp-id", json!(5), "[0].smtp-id: must be a string"),
            ("email", json!(["a@b.c"]), "[0].email: must be a string"),
        ];
        for (field, value, expected) in cases {
            assert_eq!(reason(with(delivered(), field, value)), expected);
        }
    }

    #[test]
    fn non_object_element_is_refused() {
        let element = Element::NotObject { text: r#""delivered""# };
        assert_eq!(
            normalize_event(&element, &mut EventFields::default(), 4)
                .map_err(|error| error.to_string())
                .err(),
            Some("[4]: not a JSON object".to_owned())
        );
    }

    #[test]
    fn whole_numbers_only() {
        let number = |value: Value| whole_number(&value.to_string());
        assert_eq!(number(json!(5)), Some(5));
        assert_eq!(number(json!(5.0)), Some(5));
        assert_eq!(number(json!(-5)), Some(-5));
        assert_eq!(number(json!(5.5)), None);
        assert_eq!(number(json!(1e19)), None);
        assert_eq!(whole_number("-0"), Some(0));
        assert_eq!(whole_number("123456789012345678"), Some(123_456_789_012_345_678));
        assert_eq!(whole_number("9223372036854775807"), Some(i64::MAX));
        assert_eq!(whole_number("1e400"), None);
    }
}
