//! An event's members sorted into the fields its columns read.
//!
//! SendGrid flattens the sender's custom args into the event, so a member is one of three
//! things: a field a column reads, another field SendGrid defines (kept in `raw` only), or a
//! custom arg.

use std::borrow::Cow;

use sluice_plugin_sdk::json::scan::Kind;

use crate::wire::{Member, Value};

/// A member SendGrid defines that a column reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Email,
    Event,
    Timestamp,
    SgEventId,
    SgMessageId,
    SmtpId,
    Category,
    Reason,
    Status,
    Response,
    Attempt,
    BounceType,
    BounceClassification,
    Tls,
    Useragent,
    Ip,
    Url,
    UrlOffset,
    AsmGroupId,
    Pool,
    MarketingCampaignId,
    MarketingCampaignName,
}

/// How many [`Field`]s there are.
const FIELDS: usize = 22;

/// What a member is, by its name.
enum Name {
    Field(Field),
    /// A field SendGrid defines that no column reads.
    SendGrid,
    /// One of the sender's custom args.
    Custom,
}

/// What a member's name makes of it. Names are grouped by length first, so a custom arg's
/// name is compared with the few SendGrid names of its length only.
fn name_of(name: &str) -> Name {
    match name.len() {
        2 => match name {
            "ip" => Name::Field(Field::Ip),
            _ => Name::Custom,
        },
        3 => match name {
            "tls" => Name::Field(Field::Tls),
            "url" => Name::Field(Field::Url),
            _ => Name::Custom,
        },
        4 => match name {
            "pool" => Name::Field(Field::Pool),
            "type" => Name::Field(Field::BounceType),
            _ => Name::Custom,
        },
        5 => match name {
            "email" => Name::Field(Field::Email),
            "event" => Name::Field(Field::Event),
            _ => Name::Custom,
        },
        6 => match name {
            "reason" => Name::Field(Field::Reason),
            "status" => Name::Field(Field::Status),
            _ => Name::Custom,
        },
        7 => match name {
            "attempt" => Name::Field(Field::Attempt),
            "send_at" => Name::SendGrid,
            "smtp-id" => Name::Field(Field::SmtpId),
            _ => Name::Custom,
        },
        8 => match name {
            "category" => Name::Field(Field::Category),
            "cert_err" => Name::SendGrid,
            "mc_stats" => Name::SendGrid,
            "phase_id" => Name::SendGrid,
            "response" => Name::Field(Field::Response),
            _ => Name::Custom,
        },
        9 => match name {
            "post_type" => Name::SendGrid,
            "timestamp" => Name::Field(Field::Timestamp),
            "useragent" => Name::Field(Field::Useragent),
            _ => Name::Custom,
        },
        10 => match name {
            "url_offset" => Name::Field(Field::UrlOffset),
            _ => Name::Custom,
        },
        11 => match name {
            "sg_event_id" => Name::Field(Field::SgEventId),
            "template_id" => Name::SendGrid,
            _ => Name::Custom,
        },
        12 => match name {
            "asm_group_id" => Name::Field(Field::AsmGroupId),
            _ => Name::Custom,
        },
        13 => match name {
            "sg_message_id" => Name::Field(Field::SgMessageId),
            "singlesend_id" => Name::SendGrid,
            "template_hash" => Name::SendGrid,
            _ => Name::Custom,
        },
        14 => match name {
            "sg_template_id" => Name::SendGrid,
            _ => Name::Custom,
        },
        15 => match name {
            "sg_content_type" => Name::SendGrid,
            "sg_machine_open" => Name::SendGrid,
            "singlesend_name" => Name::SendGrid,
            _ => Name::Custom,
        },
        16 => match name {
            "sg_template_name" => Name::SendGrid,
            _ => Name::Custom,
        },
        19 => match name {
            "template_version_id" => Name::SendGrid,
            _ => Name::Custom,
        },
        21 => match name {
            "bounce_classification" => Name::Field(Field::BounceClassification),
            "marketing_campaign_id" => Name::Field(Field::MarketingCampaignId),
            _ => Name::Custom,
        },
        23 => match name {
            "marketing_campaign_name" => Name::Field(Field::MarketingCampaignName),
            _ => Name::Custom,
        },
        26 => match name {
            "marketing_campaign_version" => Name::SendGrid,
            _ => Name::Custom,
        },
        27 => match name {
            "marketing_campaign_split_id" => Name::SendGrid,
            _ => Name::Custom,
        },
        _ => Name::Custom,
    }
}

/// The members of one event, sorted by [`EventFields::put`]; reused from event to event.
#[derive(Debug, Default)]
pub struct EventFields<'a> {
    /// The value of each [`Field`], `null` counting as absent; a repeated name keeps its last value.
    slots: [Option<Value<'a>>; FIELDS],
    /// Every member SendGrid does not define, in document order.
    pub custom_args: Vec<Member<'a>>,
}

impl<'a> EventFields<'a> {
    /// Forgets the previous event's members.
    pub fn clear(&mut self) {
        self.slots = [None; FIELDS];
        self.custom_args.clear();
    }

    /// Takes one member of the event.
    #[inline]
    pub fn put(&mut self, name: Cow<'a, str>, value: Value<'a>) {
        match name_of(&name) {
            Name::Field(field) => self.slots[field as usize] = (value.kind != Kind::Null).then_some(value),
            Name::SendGrid => {}
            Name::Custom => self.custom_args.push((name, value)),
        }
    }

    /// The value of `field`, unless it was absent or null.
    #[inline]
    pub fn get(&self, field: Field) -> Option<Value<'a>> {
        self.slots[field as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(fields: &mut EventFields<'static>, name: &'static str, text: &'static str) {
        fields.put(Cow::Borrowed(name), Value::of_text(text));
    }

    #[test]
    fn members_land_in_their_fields_and_the_rest_are_custom_args() {
        let mut fields = EventFields::default();
        put(&mut fields, "email", r#""a@b.c""#);
        put(&mut fields, "sg_machine_open", "false");
        put(&mut fields, "mail_id", r#""m-1""#);
        put(&mut fields, "type", r#""bounce""#);
        put(&mut fields, "smtp-id", r#""<x>""#);
        assert_eq!(fields.get(Field::Email).map(|value| value.text), Some(r#""a@b.c""#));
        assert_eq!(fields.get(Field::BounceType).map(|value| value.text), Some(r#""bounce""#));
        assert_eq!(fields.get(Field::SmtpId).map(|value| value.text), Some(r#""<x>""#));
        let custom: Vec<&str> = fields.custom_args.iter().map(|(name, _)| name.as_ref()).collect();
        assert_eq!(custom, ["mail_id"]);
    }

    #[test]
    fn a_later_value_or_null_replaces_an_earlier_one() {
        let mut fields = EventFields::default();
        put(&mut fields, "reason", r#""first""#);
        put(&mut fields, "reason", r#""second""#);
        assert_eq!(fields.get(Field::Reason).map(|value| value.text), Some(r#""second""#));
        put(&mut fields, "reason", "null");
        assert_eq!(fields.get(Field::Reason), None);
        fields.clear();
        assert_eq!(fields.get(Field::Email), None);
    }

    #[test]
    fn every_sendgrid_name_is_known_and_no_custom_arg_is() {
        for name in [
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
        ] {
            assert!(!matches!(name_of(name), Name::Custom), "{name}");
        }
        for name in ["mail_id", "tenant", "Email", "emails", "", "smtp_id", "sg_event_id "] {
            assert!(matches!(name_of(name), Name::Custom), "{name}");
        }
    }
}
