"""The user-status ETL's rules, as the sluice plugins `validate-user-status` and
`explode-status-logs` apply them (plugins/*/src/user_status.rs, status_log.rs).

One input record (a JSON object per line) gives:
- valid (userId and createdAt strings, lastVisitedAt an integer within PostgreSQL int range,
  status a non-empty string, isBlacklisted a boolean, statusLogs an array; all present and
  non-null) → a `user_status` row, and one `user_status_log` row per statusLogs entry when
  every entry is good (an object with a non-empty string `status` and an integer or string
  `updatedOn`); a record with any bad entry gives no log rows and counts as a failure (sluice
  dead-letters it), its user_status row still stands;
- any other object → one `user_status_error_rec` row,
  `userid:<v>,createdAt:<v>,lastVisitedAt:<v>,status:<v>,statusLogs:<v>,isBlacklisted:<v>`
  (missing/null → `null`, strings without quotes, anything else as compact JSON);
- a line that is not a JSON object → a failure (sluice dead-letters it); blank lines are skipped.

Difference that only shows on unusual input: compact JSON in error_rec is orjson's re-encoding
of the parsed value, so a non-integer number such as `1.5e9` reads `1500000000.0`.
"""

import orjson

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


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
    return (
        type(get("userId")) is str
        and type(get("createdAt")) is str
        and type(last_visited_at) is int
        and INT32_MIN <= last_visited_at <= INT32_MAX
        and type(status) is str
        and status != ""
        and type(get("isBlacklisted")) is bool
        and type(get("statusLogs")) is list
    )


def _entry_problem(entry) -> str | None:
    if type(entry) is not dict:
        return ": expected an object"
    status = entry.get("status")
    if status is None:
        return ".status: missing or null"
    if type(status) is not str:
        return ".status: expected a string"
    if status == "":
        return ".status: empty"
    updated_on = entry.get("updatedOn")
    if updated_on is None:
        return ".updatedOn: missing or null"
    if type(updated_on) is str:
        return None
    if type(updated_on) is float:
        return f".updatedOn: not a 64-bit integer: {updated_on}"
    if type(updated_on) is not int:
        return ".updatedOn: expected an integer or a string"
    if not INT64_MIN <= updated_on <= INT64_MAX:
        return f".updatedOn: not a 64-bit integer: {updated_on}"
    return None


def status_log_rows(user_id: str, status_logs: list) -> list[tuple[str, str, str]]:
    """(userId, updatedOn, status) per entry, all of them or none.

    Raises RecordFailure listing every bad entry.
    """
    rows = []
    problems = []
    for position, entry in enumerate(status_logs):
        problem = _entry_problem(entry)
        if problem is None:
            updated_on = entry["updatedOn"]
            rows.append((user_id, updated_on if type(updated_on) is str else str(updated_on), entry["status"]))
        else:
            problems.append(f"statusLogs[{position}]{problem}")
    if problems:
        raise RecordFailure("; ".join(problems))
    return rows


def parse_record(line: str | bytes) -> dict:
    """The JSON object of one input line. Raises RecordFailure for anything else."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise RecordFailure(f"not JSON: {error}") from None
    if type(record) is not dict:
        raise RecordFailure("expected a JSON object")
    return record
