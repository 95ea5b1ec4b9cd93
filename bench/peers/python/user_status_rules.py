"""The user-status ETL's rules, as the sluice plugins `validate-user-status` and
`explode-status-logs` apply them (plugins/*/src/user_status.rs, status_log.rs).

One input record (a JSON object per line) is exactly one of:
- valid (userId and createdAt strings, lastVisitedAt an integer within PostgreSQL int range,
  status a non-empty string, isBlacklisted a boolean, statusLogs an array whose entries are
  all objects; all present and non-null) → a `user_status` row and one `user_status_log` row
  per statusLogs entry, in order. An entry's `updatedOn` and `status` are NULL when missing
  or null; otherwise the text the varchar column holds: a string's content, a number's JSON
  text, `true`/`false`, an array or object as compact JSON. No entry value is refused;
- any other object (a statusLogs entry that is not an object included) → one
  `user_status_error_rec` row,
  `userid:<v>,createdAt:<v>,lastVisitedAt:<v>,status:<v>,statusLogs:<v>,isBlacklisted:<v>`
  (missing/null → `null`, strings without quotes, anything else as compact JSON), and no
  other row;
- a line that is not a JSON object → a failure (sluice dead-letters it); blank lines are skipped.

Of the valid records' `user_status` rows, the last per userId is the one the table keeps.

Differences that only show on unusual input, none of them in gen_user_status.py's data:
- compact JSON (in error_rec, and in a log column holding an array or object) is orjson's
  re-encoding of the parsed value, and a log column holding a number is that re-encoding
  too, where sluice keeps the input's text: `1.5e9` reads `1500000000.0`, `-0` reads `0`,
  and `"\\u00e9"` inside an array reads `é`;
- sluice dead-letters a record that repeats one of its six fields; orjson keeps the last value.
"""

import orjson

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class RecordFailure(Exception):
    """A record sluice would dead-letter instead of loading."""


def _text(value) -> str:
    if value is None:
        return "null"
    if type(value) is str:
        return value
    return orjson.dumps(value).decode()


def error_rec(record: dict) -> str:
    """An invalid record's fields as one line of text, in the original job's format."""
    get = record.get
    return (
        f"userid:{_text(get('userId'))},createdAt:{_text(get('createdAt'))},"
        f"lastVisitedAt:{_text(get('lastVisitedAt'))},status:{_text(get('status'))},"
        f"statusLogs:{_text(get('statusLogs'))},isBlacklisted:{_text(get('isBlacklisted'))}"
    )


def is_valid(record: dict) -> bool:
    get = record.get
    last_visited_at = get("lastVisitedAt")
    status = get("status")
    status_logs = get("statusLogs")
    return (
        type(get("userId")) is str
        and type(get("createdAt")) is str
        and type(last_visited_at) is int
        and INT32_MIN <= last_visited_at <= INT32_MAX
        and type(status) is str
        and status != ""
        and type(get("isBlacklisted")) is bool
        and type(status_logs) is list
        and all(type(entry) is dict for entry in status_logs)
    )


def _column(value) -> str | None:
    """A statusLogs entry's field as its varchar column holds it."""
    if value is None or type(value) is str:
        return value
    return orjson.dumps(value).decode()


def status_log_rows(user_id: str, status_logs: list) -> list[tuple[str, str | None, str | None]]:
    """(userId, updatedOn, status) per entry of a valid record's statusLogs.

    Raises RecordFailure, naming every entry that is not an object, as explode-status-logs
    refuses such a record whole; is_valid already sends it to the error rows.
    """
    problems = [
        f"statusLogs[{position}]: expected an object"
        for position, entry in enumerate(status_logs)
        if type(entry) is not dict
    ]
    if problems:
        raise RecordFailure("; ".join(problems))
    return [(user_id, _column(entry.get("updatedOn")), _column(entry.get("status"))) for entry in status_logs]


def parse_record(line: str | bytes) -> dict:
    """The JSON object of one input line. Raises RecordFailure for anything else."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise RecordFailure(f"not JSON: {error}") from None
    if type(record) is not dict:
        raise RecordFailure("expected a JSON object")
    return record
