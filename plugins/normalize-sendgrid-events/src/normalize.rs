//! Reading one SendGrid event object into a [`NormalizedEvent`], checking each field's type.
//!
//! A field of the wrong type is an error naming the field rather than a silent `null`: such an
//! event goes to the dead letters and can be swept once the plugin learns the new shape.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Number;
use serde_json::value::RawValue;
use sluice_plugin_sdk::json::{compact, string_content};
use thiserror::Error;

use crate::date::utc_date;
use crate::event::{EVENT_TYPES, NormalizedEvent, SENDGRID_FIELDS};
use crate::wire::{JsonKind, RawMembers, json_kind, object_members, string_array};

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

/// Types event `element` of a webhook body; `raw` is the element's original text.
///
/// # Errors
/// The element is not an object, a required field (email, event, timestamp, sg_event_id) is
/// missing, the event type is not one SendGrid sends, the timestamp is outside 1970..=9999, or
/// a field has the wrong type.
pub fn normalize_event(raw: &RawValue, element: usize) -> Result<NormalizedEvent<'_>, ElementError> {
    let checker = FieldChecker { element };
    let members = match object_members(raw) {
        Ok(Some(members)) => members,
        Ok(None) => return Err(checker.element_error("not a JSON object".to_owned())),
        Err(error) => return Err(checker.element_error(format!("not valid JSON: {error}"))),
    };
    let fields = EventFields::from_members(members);

    let email = checker.required_string("email", fields.email)?;
    let event = checker.event_type(fields.event)?;
    let timestamp = checker.timestamp(fields.timestamp)?;
    let sg_event_id = checker.required_string("sg_event_id", fields.sg_event_id)?;
    let dt = utc_date(timestamp).map_err(|error| checker.error("timestamp", error.to_string()))?;
    let tls = match checker.optional_integer("tls", fields.tls)? {
        None => None,
        Some(tls) => Some(
            i32::try_from(tls)
                .map_err(|_| checker.error("tls", format!("out of range (SendGrid sends 0 or 1): {tls}")))?,
        ),
    };
    let bounce_type =
        if event == "bounce" { checker.optional_string("type", fields.bounce_type)? } else { None };
    Ok(NormalizedEvent {
        dt,
        event,
        email,
        timestamp,
        // In range: the timestamp is at most year 9999 in seconds.
        event_time: timestamp * 1000,
        sg_event_id,
        sg_message_id: checker.optional_string("sg_message_id", fields.sg_message_id)?,
        smtp_id: checker.optional_string("smtp-id", fields.smtp_id)?,
        categories: checker.categories(fields.category)?,
        reason: checker.optional_string("reason", fields.reason)?,
        status: checker.optional_string("status", fields.status)?,
        response: checker.optional_string("response", fields.response)?,
        attempt: checker.attempt(fields.attempt)?,
        bounce_type,
        bounce_classification: checker
            .optional_string("bounce_classification", fields.bounce_classification)?,
        tls,
        useragent: checker.optional_string("useragent", fields.useragent)?,
        ip: checker.optional_string("ip", fields.ip)?,
        url: checker.optional_string("url", fields.url)?,
        url_offset: fields.url_offset.map(compact),
        asm_group_id: checker.optional_integer("asm_group_id", fields.asm_group_id)?,
        pool: fields.pool.map(compact),
        marketing_campaign_id: checker
            .optional_integer("marketing_campaign_id", fields.marketing_campaign_id)?,
        marketing_campaign_name: checker
            .optional_string("marketing_campaign_name", fields.marketing_campaign_name)?,
        custom_args: fields.custom_args.into_iter().map(|(key, value)| (key, compact(value))).collect(),
        // JSON columns are kept compact; the sender's spacing is the only thing dropped.
        raw: compact(raw),
    })
}

/// An event's members sorted into the fields the columns read; `null` counts as absent.
#[derive(Default)]
struct EventFields<'a> {
    email: Option<&'a RawValue>,
    event: Option<&'a RawValue>,
    timestamp: Option<&'a RawValue>,
    sg_event_id: Option<&'a RawValue>,
    sg_message_id: Option<&'a RawValue>,
    smtp_id: Option<&'a RawValue>,
    category: Option<&'a RawValue>,
    reason: Option<&'a RawValue>,
    status: Option<&'a RawValue>,
    response: Option<&'a RawValue>,
    attempt: Option<&'a RawValue>,
    bounce_type: Option<&'a RawValue>,
    bounce_classification: Option<&'a RawValue>,
    tls: Option<&'a RawValue>,
    useragent: Option<&'a RawValue>,
    ip: Option<&'a RawValue>,
    url: Option<&'a RawValue>,
    url_offset: Option<&'a RawValue>,
    asm_group_id: Option<&'a RawValue>,
    pool: Option<&'a RawValue>,
    marketing_campaign_id: Option<&'a RawValue>,
    marketing_campaign_name: Option<&'a RawValue>,
    custom_args: BTreeMap<Cow<'a, str>, &'a RawValue>,
}

impl<'a> EventFields<'a> {
    /// One pass over the members; a repeated key keeps its last value, as JSON parsers do.
    fn from_members(members: RawMembers<'a>) -> Self {
        let mut fields = EventFields::default();
        for (key, value) in members.0 {
            let slot = match key.as_ref() {
                "email" => &mut fields.email,
                "event" => &mut fields.event,
                "timestamp" => &mut fields.timestamp,
                "sg_event_id" => &mut fields.sg_event_id,
                "sg_message_id" => &mut fields.sg_message_id,
                "smtp-id" => &mut fields.smtp_id,
                "category" => &mut fields.category,
                "reason" => &mut fields.reason,
                "status" => &mut fields.status,
                "response" => &mut fields.response,
                "attempt" => &mut fields.attempt,
                "type" => &mut fields.bounce_type,
                "bounce_classification" => &mut fields.bounce_classification,
                "tls" => &mut fields.tls,
                "useragent" => &mut fields.useragent,
                "ip" => &mut fields.ip,
                "url" => &mut fields.url,
                "url_offset" => &mut fields.url_offset,
                "asm_group_id" => &mut fields.asm_group_id,
                "pool" => &mut fields.pool,
                "marketing_campaign_id" => &mut fields.marketing_campaign_id,
                "marketing_campaign_name" => &mut fields.marketing_campaign_name,
                known if SENDGRID_FIELDS.contains(&known) => continue,
                _ => {
                    fields.custom_args.insert(key, value);
                    continue;
                }
            };
            *slot = (json_kind(value) != JsonKind::Null).then_some(value);
        }
        fields
    }
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
        value: Option<&'a RawValue>,
    ) -> Result<Option<Cow<'a, str>>, ElementError> {
        value
            .map(|value| string_content(value).ok_or_else(|| self.error(field, "must be a string")))
            .transpose()
    }

    /// A string that must be present and non-empty.
    fn required_string<'a>(
        &self,
        field: &'static str,
        value: Option<&'a RawValue>,
    ) -> Result<Cow<'a, str>, ElementError> {
        match self.optional_string(field, value)? {
            Some(text) if !text.is_empty() => Ok(text),
            _ => Err(self.error(field, "required")),
        }
    }

    fn event_type(&self, value: Option<&RawValue>) -> Result<&'static str, ElementError> {
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
        value: Option<&RawValue>,
    ) -> Result<Option<i64>, ElementError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let integer = match json_kind(value) {
            JsonKind::Number => number(value).as_ref().and_then(whole_number),
            JsonKind::String => string_content(value).and_then(|text| text.trim().parse().ok()),
            _ => None,
        };
        integer.map(Some).ok_or_else(|| self.error(field, "must be an integer"))
    }

    /// Unix seconds; a fractional number is accepted and rounded down to its second.
    fn timestamp(&self, value: Option<&RawValue>) -> Result<i64, ElementError> {
        let Some(value) = value else {
            return Err(self.error("timestamp", "required"));
        };
        let seconds = match json_kind(value) {
            JsonKind::Number => number(value),
            _ => None,
        };
        let Some(seconds) = seconds else {
            return Err(
                self.error("timestamp", "must be a number (unix seconds), not a string or other value")
            );
        };
        // Beyond i64 (a huge u64) or fractional: the saturating cast keeps huge values huge,
        // and the date check refuses them.
        Ok(seconds
            .as_i64()
            .unwrap_or_else(|| seconds.as_f64().map_or(i64::MAX, |seconds| seconds.floor() as i64)))
    }

    /// SendGrid sends one category as a string and several as an array.
    fn categories<'a>(&self, value: Option<&'a RawValue>) -> Result<Vec<Cow<'a, str>>, ElementError> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let categories = match json_kind(value) {
            JsonKind::String => string_content(value).map(|category| vec![category]),
            JsonKind::Array => string_array(value),
            _ => None,
        };
        categories.ok_or_else(|| self.error("category", "must be a string or an array of strings"))
    }

    fn attempt<'a>(&self, value: Option<&'a RawValue>) -> Result<Option<Cow<'a, str>>, ElementError> {
        match value.map(|value| (json_kind(value), value)) {
            None => Ok(None),
            Some((JsonKind::String, value)) => Ok(string_content(value)),
            Some((JsonKind::Number, value)) => Ok(Some(Cow::Borrowed(value.get()))),
            Some(_) => Err(self.error("attempt", "must be a string or a number")),
        }
    }
}

fn number(value: &RawValue) -> Option<Number> {
    serde_json::from_str(value.get()).ok()
}

/// The number as an i64 if it is a whole number in range (`5` or `5.0`, not `5.5`).
fn whole_number(number: &Number) -> Option<i64> {
    number.as_i64().or_else(|| {
        number.as_f64().filter(|value| value.fract() == 0.0 && value.abs() < 9.0e18).map(|value| value as i64)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn raw(value: &Value) -> Box<RawValue> {
        match RawValue::from_string(value.to_string()) {
            Ok(raw) => raw,
            Err(error) => panic!("test JSON: {error}"),
        }
    }

    /// Normalizes `value` as event 0 and returns the row as JSON, or the error text.
    fn normalized(value: Value) -> Result<Value, String> {
        let raw = raw(&value);
        let event = normalize_event(&raw, 0).map_err(|error| error.to_string())?;
        serde_json::to_value(&event).map_err(|error| error.to_string())
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
        let raw = raw(&json!("delivered"));
        assert_eq!(
            normalize_event(&raw, 4).map_err(|error| error.to_string()).err(),
            Some("[4]: not a JSON object".to_owned())
        );
    }

    #[test]
    fn whole_numbers_only() {
        let number = |value: Value| match value {
            Value::Number(number) => whole_number(&number),
            _ => None,
        };
        assert_eq!(number(json!(5)), Some(5));
        assert_eq!(number(json!(5.0)), Some(5));
        assert_eq!(number(json!(-5)), Some(-5));
        assert_eq!(number(json!(5.5)), None);
        assert_eq!(number(json!(1e19)), None);
    }
}
