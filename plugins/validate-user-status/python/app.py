"""validate-user-status in Python: the first step of the user-status ETL, giving the same rows
and failures as the Rust plugin beside it (../src) on the same records.

A record is valid when all six fields are present, non-null and of the expected type: `userId`
and `createdAt` strings, `lastVisitedAt` an integer literal within PostgreSQL `int` range,
`status` a non-empty string, `isBlacklisted` true or false, `statusLogs` an array of objects. A
valid record gives a `user_status` row and a `status_logs` row (the array, compact, for
explode-status-logs); any other object gives one `user_status_error_rec` row in the original
job's format; input that is not one JSON object is a failure.
"""

import json
import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types as wit

from json_text import JsonError, compact_text, read_object, string_text
from sluice_plugin import Batch, Output, RawJson, boolean, int64, json_value, text

NAME = "validate-user-status"
VERSION = "0.1.0"

USER_STATUS = Output(
    "user_status",
    [text("userId"), text("createdAt"), text("status"), int64("lastVisitedAt"), boolean("isBlacklisted")],
)
STATUS_LOGS = Output("status_logs", [text("userId"), json_value("statusLogs")])
USER_STATUS_ERROR_REC = Output("user_status_error_rec", [text("error_rec")])

FIELDS = ("userId", "createdAt", "lastVisitedAt", "status", "isBlacklisted", "statusLogs")
# The order and labels of the original job's error text, lowercase `userid` included.
ERROR_REC = (
    ("userid", "userId"),
    ("createdAt", "createdAt"),
    ("lastVisitedAt", "lastVisitedAt"),
    ("status", "status"),
    ("statusLogs", "statusLogs"),
    ("isBlacklisted", "isBlacklisted"),
)
_INTEGER = re.compile(r"-?[0-9]+")


def int32(raw):
    """The value of an integer literal that fits a 32-bit column; `1.0`, `1e3` and strings do not."""
    if raw is None or not _INTEGER.fullmatch(raw):
        return None
    number = int(raw)
    return number if -(2**31) <= number < 2**31 else None


def array_of_objects(raw):
    """The array's compact text when it is an array whose entries are all objects."""
    if raw is None or not raw.startswith("["):
        return None
    if not all(isinstance(entry, dict) for entry in json.loads(raw)):
        return None
    return compact_text(raw)


def valid_row(fields):
    """The typed record, or None when a rule of the module docs is broken."""
    user_id = string_text(fields.get("userId") or "")
    created_at = string_text(fields.get("createdAt") or "")
    last_visited_at = int32(fields.get("lastVisitedAt"))
    status = string_text(fields.get("status") or "")
    is_blacklisted = {"true": True, "false": False}.get(fields.get("isBlacklisted"))
    status_logs = array_of_objects(fields.get("statusLogs"))
    if None in (user_id, created_at, last_visited_at, status, is_blacklisted, status_logs) or status == "":
        return None
    return {
        "userId": user_id,
        "createdAt": created_at,
        "status": status,
        "lastVisitedAt": last_visited_at,
        "isBlacklisted": is_blacklisted,
        "statusLogs": RawJson(status_logs),
    }


def error_rec(fields):
    """`userid:<v>,createdAt:<v>,...`: null for a missing or null field, a string's content, any
    other value as compact JSON text."""
    parts = []
    for label, name in ERROR_REC:
        raw = fields.get(name)
        if raw is None:
            parts.append(f"{label}:null")
        else:
            content = string_text(raw)
            parts.append(f"{label}:{compact_text(raw) if content is None else content}")
    return ",".join(parts)


class Transformer(exports.Transformer):
    def info(self):
        return wit.PluginInfo(NAME, VERSION, [USER_STATUS.info(), STATUS_LOGS.info(), USER_STATUS_ERROR_REC.info()])

    def init(self, config):
        for key, _ in config:
            raise Err(f"unknown config key `{key}` (allowed: none)")

    def transform(self, batch):
        result = Batch(USER_STATUS, STATUS_LOGS, USER_STATUS_ERROR_REC)
        # Rows keep their record's key when any record of the batch has one.
        keyed = any(record.key is not None for record in batch)
        for index, record in enumerate(batch):
            key = (record.key or b"") if keyed else None
            try:
                members = read_object(record.value, unique=FIELDS)
            except JsonError as error:
                result.fail(index, str(error))
                continue
            # Missing and null are alike.
            fields = {name: raw for name, raw in members.items() if name in FIELDS and raw != "null"}
            row = valid_row(fields)
            if row is None:
                result.push(USER_STATUS_ERROR_REC, index, {"error_rec": error_rec(fields)}, key=key)
            else:
                result.push(USER_STATUS, index, row, key=key)
                result.push(STATUS_LOGS, index, row, key=key)
        return result.result()
