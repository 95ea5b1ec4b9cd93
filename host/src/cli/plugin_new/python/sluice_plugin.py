"""Helpers for sluice transform plugins written in Python.

Declare each output's columns once, push rows as dicts (or dataclasses), report a failure with
the field it is about, and the column batches of the `sluice:transform` contract are built for
you: no offsets by hand.

    USERS = Output("users", [text("user_id"), text("name", nullable=True), int64("visits")])
    batch = Batch(USERS)
    batch.push(USERS, index, {"user_id": "u1", "name": None, "visits": 3})
    batch.fail(index, "missing or null", field="id")
    return batch.result()
"""

import dataclasses
import json
import math

from wit_world.imports import types as wit

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of an output: its name, its contract type and whether it may be null."""

    name: str
    type: wit.ColumnType
    nullable: bool = False


def text(name, nullable=False):
    return Column(name, wit.ColumnType.TEXT, nullable)


def int32(name, nullable=False):
    return Column(name, wit.ColumnType.INT32, nullable)


def int64(name, nullable=False):
    return Column(name, wit.ColumnType.INT64, nullable)


def float64(name, nullable=False):
    return Column(name, wit.ColumnType.FLOAT64, nullable)


def boolean(name, nullable=False):
    return Column(name, wit.ColumnType.BOOLEAN, nullable)


def timestamp_ms(name, nullable=False):
    """Milliseconds since the Unix epoch, UTC."""
    return Column(name, wit.ColumnType.TIMESTAMP_MS, nullable)


def text_list(name, nullable=False):
    return Column(name, wit.ColumnType.TEXT_LIST, nullable)


def json_value(name, nullable=False):
    """Any JSON value, kept as its compact text."""
    return Column(name, wit.ColumnType.JSON, nullable)


class RawJson(str):
    """JSON text for a json column, kept exactly as given instead of re-encoded from Python
    values (a number stays `1e3`, members keep their order and escapes): compact, valid JSON."""


class RowError(Exception):
    """A value a column cannot hold; `field` is the column."""

    def __init__(self, field, reason):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Output:
    """A named output and its columns, declared once."""

    def __init__(self, name, columns):
        self.name = name
        self.columns = list(columns)

    def info(self):
        return wit.OutputInfo(
            self.name, [wit.Column(c.name, c.type, c.nullable) for c in self.columns]
        )


def _check(column, value):
    """`value` as the column stores it, or RowError."""
    kind = column.type
    T = wit.ColumnType
    if kind == T.TEXT:
        if not isinstance(value, str):
            raise RowError(column.name, f"expected a string, found {kind_of(value)}")
        return value.encode()
    if kind in (T.INT32, T.INT64, T.TIMESTAMP_MS):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RowError(column.name, f"expected a whole number, found {kind_of(value)}")
        low, high = _INT32 if kind == T.INT32 else _INT64
        if not low <= value <= high:
            raise RowError(column.name, f"{value} is out of range")
        return value
    if kind == T.FLOAT64:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RowError(column.name, f"expected a number, found {kind_of(value)}")
        return float(value)
    if kind == T.BOOLEAN:
        if not isinstance(value, bool):
            raise RowError(column.name, f"expected true or false, found {kind_of(value)}")
        return value
    if kind == T.TEXT_LIST:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise RowError(column.name, f"expected a list of strings, found {kind_of(value)}")
        return [v.encode() for v in value]
    if isinstance(value, RawJson):
        return value.encode()
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as error:
        raise RowError(column.name, f"not JSON: {error}") from None


def kind_of(value):
    """How failure reasons name a value's kind (\"a string\", \"an array\")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Rows:
    """One output's rows of a batch, column by column."""

    def __init__(self, output):
        self.output = output
        self.inputs = []
        self.keys = None
        self.values = [[] for _ in output.columns]
        self.nulls = [[] for _ in output.columns]

    def push(self, index, row, key):
        if dataclasses.is_dataclass(row):
            row = dataclasses.asdict(row)
        checked = []
        for column in self.output.columns:
            value = row.get(column.name)
            if isinstance(value, float) and math.isnan(value):
                value = None
            if value is None:
                if not column.nullable:
                    raise RowError(column.name, "missing or null")
                checked.append(None)
            else:
                checked.append(_check(column, value))
        if self.inputs and (key is None) != (self.keys is None):
            raise RowError("key", "every row of an output has a key, or none has")
        row_number = len(self.inputs)
        self.inputs.append(index)
        if key is not None:
            if self.keys is None:
                self.keys = []
            self.keys.append(key if isinstance(key, bytes) else str(key).encode())
        for position, value in enumerate(checked):
            if value is None:
                self.nulls[position].append(row_number)
            self.values[position].append(value)

    def batch(self):
        columns = []
        for column, values, nulls in zip(self.output.columns, self.values, self.nulls):
            columns.append(wit.ColumnData(_column_values(column.type, values), nulls))
        keys = _blobs(self.keys) if self.keys is not None else None
        return wit.OutputBatch(self.output.name, self.inputs, keys, columns)


def _blobs(items):
    offsets = [0]
    for item in items:
        offsets.append(offsets[-1] + len(item))
    return wit.Blobs(b"".join(items), offsets)


def _column_values(kind, values):
    T = wit.ColumnType
    if kind in (T.TEXT, T.JSON):
        blobs = _blobs([b"" if v is None else v for v in values])
        return wit.ColumnValues_Text(blobs) if kind == T.TEXT else wit.ColumnValues_Json(blobs)
    if kind == T.TEXT_LIST:
        items, offsets = [], [0]
        for value in values:
            items.extend(value or [])
            offsets.append(len(items))
        return wit.ColumnValues_TextList(wit.TextLists(_blobs(items), offsets))
    if kind == T.FLOAT64:
        return wit.ColumnValues_Float64([0.0 if v is None else v for v in values])
    if kind == T.BOOLEAN:
        return wit.ColumnValues_Boolean([False if v is None else v for v in values])
    numbers = [0 if v is None else v for v in values]
    if kind == T.INT32:
        return wit.ColumnValues_Int32(numbers)
    if kind == T.INT64:
        return wit.ColumnValues_Int64(numbers)
    return wit.ColumnValues_TimestampMs(numbers)


class Batch:
    """What one `transform` call gives back: rows of the declared outputs, and failures."""

    def __init__(self, *outputs):
        self._rows = {output.name: _Rows(output) for output in outputs}
        self._failures = []

    def push(self, output, index, row, key=None):
        """Adds `row` (a dict or a dataclass, by column name) made from input `index`.

        Raises RowError, and keeps nothing of the row, when a value does not fit its column.
        """
        name = output.name if isinstance(output, Output) else output
        self._rows[name].push(index, row, key)

    def fail(self, index, reason, field=None, part=None):
        """Input `index` failed (only `part` of it, when given), because of `field` if named."""
        self._failures.append(wit.Failure(index, field, str(reason), part))

    def result(self):
        outputs = [rows.batch() for rows in self._rows.values() if rows.inputs]
        return wit.BatchResult(outputs, self._failures)
