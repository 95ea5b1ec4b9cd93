"""SendGrid webhook events normalized as the sluice plugin `normalize-sendgrid-events` does it.

The rules, columns and error texts follow plugins/normalize-sendgrid-events/src (normalize.rs,
event.rs, date.rs, batch.rs):

- a body must be a JSON array, else it fails whole;
- each element must be an object with `email`, `event` (one of EVENT_TYPES), `timestamp`
  (unix seconds, 1970..9999) and `sg_event_id`; typed fields of the wrong type fail the event
  alone, named as `[element].field: problem`; `null` counts as absent;
- unknown top-level keys are the sender's custom args (kept as a JSON object, keys sorted);
- the first event of an `sg_event_id` in a window wins (dedupe is the caller's, see `Window`
  in connector_peer.py).

Differences that only show on unusual input: JSON text columns (`raw`, `custom_args`, `pool`,
`url_offset`) are re-encoded from the parsed value by orjson rather than copied byte for byte,
so `1.50` reads `1.5` and `\\u00e9` reads `é`; error texts of a body that is no JSON array
quote orjson's message rather than serde_json's.
"""

import math
import re
from datetime import date, timedelta

import orjson
import pyarrow as pa

EVENT_TYPES = (
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
)
_EVENT_TYPE_SET = frozenset(EVENT_TYPES)
_UNKNOWN_TYPE_HINT = "expected one of " + ", ".join(EVENT_TYPES)

# Top-level keys SendGrid itself sends; every other key is a custom arg.
SENDGRID_FIELDS = frozenset(
    (
        "asm_group_id attempt bounce_classification category cert_err email event ip "
        "marketing_campaign_id marketing_campaign_name marketing_campaign_split_id "
        "marketing_campaign_version mc_stats phase_id pool post_type reason response send_at "
        "sg_content_type sg_event_id sg_machine_open sg_message_id sg_template_id "
        "sg_template_name singlesend_id singlesend_name smtp-id status template_hash template_id "
        "template_version_id timestamp tls type url url_offset useragent"
    ).split()
)

LAST_SUPPORTED_TIMESTAMP = 253_402_300_799
_I64_MAX = 2**63 - 1
_I64_MIN = -(2**63)
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")

# Partition columns first (they become the `dt=…/event=…/` path and are left out of files),
# then the data columns in the plugin's order, then the sink's lineage columns.
PARTITION_COLUMNS = ("dt", "event")
DATA_SCHEMA = pa.schema(
    [
        pa.field("email", pa.string(), nullable=False),
        pa.field("timestamp", pa.int64(), nullable=False),
        pa.field("event_time", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("sg_event_id", pa.string(), nullable=False),
        pa.field("sg_message_id", pa.string()),
        pa.field("smtp_id", pa.string()),
        pa.field("categories", pa.list_(pa.string()), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("status", pa.string()),
        pa.field("response", pa.string()),
        pa.field("attempt", pa.string()),
        pa.field("bounce_type", pa.string()),
        pa.field("bounce_classification", pa.string()),
        pa.field("tls", pa.int32()),
        pa.field("useragent", pa.string()),
        pa.field("ip", pa.string()),
        pa.field("url", pa.string()),
        pa.field("url_offset", pa.string()),
        pa.field("asm_group_id", pa.int64()),
        pa.field("pool", pa.string()),
        pa.field("marketing_campaign_id", pa.int64()),
        pa.field("marketing_campaign_name", pa.string()),
        pa.field("custom_args", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
        pa.field("kafka_topic", pa.string(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("plugin_version", pa.string(), nullable=False),
    ]
)
DATA_COLUMNS = tuple(DATA_SCHEMA.names)


class EventError(Exception):
    """Why one event of a body was refused; its text is the plugin's failure reason."""

    def __init__(self, element: int, field: str | None, problem: str):
        super().__init__(f"[{element}]" + (f".{field}" if field else "") + f": {problem}")


class BodyError(Exception):
    """Why a whole webhook body was refused."""


def parse_body(value: bytes) -> list:
    """The events of one webhook body.

    Raises BodyError when the body is not UTF-8 JSON holding an array.
    """
    try:
        events = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise BodyError(f"value is not a JSON array of SendGrid events: {error}") from None
    if not isinstance(events, list):
        kind = "map" if isinstance(events, dict) else type(events).__name__
        raise BodyError(f"value is not a JSON array of SendGrid events: invalid type: {kind}, expected a sequence")
    return events


def _is_number(value) -> bool:
    return type(value) is int or type(value) is float


class _Checker:
    """Typed reading of event `element`'s fields, raising errors that name them."""

    __slots__ = ("element",)

    def __init__(self, element: int):
        self.element = element

    def fail(self, field: str | None, problem: str) -> EventError:
        return EventError(self.element, field, problem)

    def optional_string(self, fields: dict, key: str) -> str | None:
        value = fields.get(key)
        if value is None or type(value) is str:
            return value
        raise self.fail(key, "must be a string")

    def required_string(self, fields: dict, key: str) -> str:
        value = self.optional_string(fields, key)
        if not value:
            raise self.fail(key, "required")
        return value

    def optional_integer(self, fields: dict, key: str) -> int | None:
        value = fields.get(key)
        if value is None:
            return None
        integer = None
        if type(value) is int:
            integer = value if _I64_MIN <= value <= _I64_MAX else None
        elif type(value) is float:
            if math.isfinite(value) and value == int(value) and abs(value) < 9.0e18:
                integer = int(value)
        elif type(value) is str:
            text = value.strip()
            if _INTEGER_TEXT.fullmatch(text):
                integer = int(text)
                if not _I64_MIN <= integer <= _I64_MAX:
                    integer = None
        if integer is None:
            raise self.fail(key, "must be an integer")
        return integer

    def timestamp(self, fields: dict) -> int:
        value = fields.get("timestamp")
        if value is None:
            raise self.fail("timestamp", "required")
        if not _is_number(value):
            raise self.fail("timestamp", "must be a number (unix seconds), not a string or other value")
        if type(value) is float:
            return math.floor(value) if math.isfinite(value) else _I64_MAX
        return value

    def categories(self, fields: dict) -> list:
        value = fields.get("category")
        if value is None:
            return []
        if type(value) is str:
            return [value]
        if type(value) is list and all(type(item) is str for item in value):
            return value
        raise self.fail("category", "must be a string or an array of strings")

    def attempt(self, fields: dict) -> str | None:
        value = fields.get("attempt")
        if value is None or type(value) is str:
            return value
        if _is_number(value):
            return str(value)
        raise self.fail("attempt", "must be a string or a number")


_EPOCH = date(1970, 1, 1)
_dates: dict[int, str] = {}


def utc_date(seconds: int) -> str:
    """The UTC date of `seconds` as YYYY-MM-DD (seconds already checked to be in range)."""
    days = seconds // 86_400
    text = _dates.get(days)
    if text is None:
        text = _dates[days] = (_EPOCH + timedelta(days=days)).isoformat()
    return text


def _json_text(value) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def normalize_event(event, element: int) -> tuple:
    """The row of one event: (dt, event, data column values...) in DATA_COLUMNS order, without
    the lineage columns.

    Raises EventError naming the element and field when the event is refused.
    """
    check = _Checker(element)
    if type(event) is not dict:
        raise check.fail(None, "not a JSON object")
    email = check.required_string(event, "email")
    event_type = check.required_string(event, "event")
    if event_type not in _EVENT_TYPE_SET:
        raise check.fail("event", f"unknown event type `{event_type}`; {_UNKNOWN_TYPE_HINT}")
    timestamp = check.timestamp(event)
    sg_event_id = check.required_string(event, "sg_event_id")
    if timestamp < 0:
        raise check.fail("timestamp", "before 1970-01-01, so not a SendGrid event time")
    if timestamp > LAST_SUPPORTED_TIMESTAMP:
        raise check.fail("timestamp", "after the year 9999")
    tls = check.optional_integer(event, "tls")
    if tls is not None and not _I32_MIN <= tls <= _I32_MAX:
        raise check.fail("tls", f"out of range (SendGrid sends 0 or 1): {tls}")
    bounce_type = check.optional_string(event, "type") if event_type == "bounce" else None
    sg_message_id = check.optional_string(event, "sg_message_id")
    smtp_id = check.optional_string(event, "smtp-id")
    categories = check.categories(event)
    reason = check.optional_string(event, "reason")
    status = check.optional_string(event, "status")
    response = check.optional_string(event, "response")
    attempt = check.attempt(event)
    bounce_classification = check.optional_string(event, "bounce_classification")
    useragent = check.optional_string(event, "useragent")
    ip = check.optional_string(event, "ip")
    url = check.optional_string(event, "url")
    asm_group_id = check.optional_integer(event, "asm_group_id")
    marketing_campaign_id = check.optional_integer(event, "marketing_campaign_id")
    marketing_campaign_name = check.optional_string(event, "marketing_campaign_name")
    custom_args = {key: event[key] for key in sorted(event) if key not in SENDGRID_FIELDS}
    return (
        utc_date(timestamp),
        event_type,
        email,
        timestamp,
        timestamp * 1000,
        sg_event_id,
        sg_message_id,
        smtp_id,
        categories,
        reason,
        status,
        response,
        attempt,
        bounce_type,
        bounce_classification,
        tls,
        useragent,
        ip,
        url,
        _json_text(event.get("url_offset")),
        asm_group_id,
        _json_text(event.get("pool")),
        marketing_campaign_id,
        marketing_campaign_name,
        orjson.dumps(custom_args).decode(),
        orjson.dumps(event).decode(),
    )
