// Helpers for sluice transform plugins written in JavaScript.
//
// Declare each output's columns once, push rows as plain objects, report a failure with the
// field it is about, and the column batches of the `sluice:transform` contract are built for
// you: no offsets by hand.
//
//   const USERS = output("users", [text("user_id"), text("name", { nullable: true }), int64("visits")]);
//   const batch = new Batch(USERS);
//   batch.push(USERS, index, { user_id: "u1", name: null, visits: 3 });
//   batch.fail(index, "missing or null", { field: "id" });
//   return batch.result();

const encoder = new TextEncoder();

function column(type) {
  return (name, { nullable = false } = {}) => ({ name, type, nullable });
}

export const text = column("text");
export const int32 = column("int32");
export const int64 = column("int64");
export const float64 = column("float64");
export const boolean = column("boolean");
/** Milliseconds since the Unix epoch, UTC. */
export const timestampMs = column("timestamp-ms");
export const textList = column("text-list");
/** Any JSON value, kept as its compact text. */
export const json = column("json");

/** JSON text for a json column, kept exactly as given instead of re-encoded from JavaScript
 *  values (a number stays `1e3`, members keep their order and escapes): compact, valid JSON. */
export class RawJson {
  constructor(text) {
    this.text = text;
  }
}

/** A value a column cannot hold; `field` is the column. */
export class RowError extends Error {
  constructor(field, reason) {
    super(`${field}: ${reason}`);
    this.field = field;
    this.reason = reason;
  }
}

/** A named output and its columns, declared once. */
export function output(name, columns) {
  return { name, columns, info: () => ({ name, columns: columns.map((c) => ({ ...c })) }) };
}

export function kindOf(value) {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string": return "a string";
    case "number": case "bigint": return "a number";
    case "boolean": return "a boolean";
    default: return "an object";
  }
}

const RANGES = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  "timestamp-ms": [-(2n ** 63n), 2n ** 63n - 1n],
};

function check(col, value) {
  switch (col.type) {
    case "text":
      if (typeof value !== "string") throw new RowError(col.name, `expected a string, found ${kindOf(value)}`);
      return encoder.encode(value);
    case "int32": case "int64": case "timestamp-ms": {
      const whole = typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value));
      if (!whole) throw new RowError(col.name, `expected a whole number, found ${kindOf(value)}`);
      const big = BigInt(value);
      const [low, high] = RANGES[col.type];
      if (big < low || big > high) throw new RowError(col.name, `${value} is out of range`);
      return big;
    }
    case "float64":
      if (typeof value !== "number") throw new RowError(col.name, `expected a number, found ${kindOf(value)}`);
      return value;
    case "boolean":
      if (typeof value !== "boolean") throw new RowError(col.name, `expected true or false, found ${kindOf(value)}`);
      return value;
    case "text-list":
      if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
        throw new RowError(col.name, `expected a list of strings, found ${kindOf(value)}`);
      }
      return value.map((v) => encoder.encode(v));
    default:
      if (value instanceof RawJson) return encoder.encode(value.text);
      return encoder.encode(JSON.stringify(value));
  }
}

function blobs(items) {
  const offsets = new Uint32Array(items.length + 1);
  let total = 0;
  items.forEach((item, i) => { total += item.length; offsets[i + 1] = total; });
  const bytes = new Uint8Array(total);
  items.forEach((item, i) => bytes.set(item, offsets[i]));
  return { bytes, offsets };
}

function columnValues(type, values) {
  switch (type) {
    case "text": case "json":
      return { tag: type, val: blobs(values.map((v) => v ?? new Uint8Array())) };
    case "text-list": {
      const items = [];
      const offsets = new Uint32Array(values.length + 1);
      values.forEach((list, i) => { items.push(...(list ?? [])); offsets[i + 1] = items.length; });
      return { tag: type, val: { items: blobs(items), offsets } };
    }
    case "int32": return { tag: type, val: Int32Array.from(values, (v) => Number(v ?? 0n)) };
    case "float64": return { tag: type, val: Float64Array.from(values, (v) => v ?? 0) };
    case "boolean": return { tag: type, val: values.map((v) => v ?? false) };
    default: return { tag: type, val: BigInt64Array.from(values, (v) => v ?? 0n) };
  }
}

class Rows {
  constructor(out) {
    this.output = out;
    this.inputs = [];
    this.keys = null;
    this.values = out.columns.map(() => []);
    this.nulls = out.columns.map(() => []);
  }

  push(index, row, key) {
    const checked = this.output.columns.map((col) => {
      const value = row[col.name];
      if (value === null || value === undefined) {
        if (!col.nullable) throw new RowError(col.name, "missing or null");
        return null;
      }
      return check(col, value);
    });
    if (this.inputs.length > 0 && (key == null) !== (this.keys === null)) {
      throw new RowError("key", "every row of an output has a key, or none has");
    }
    const rowNumber = this.inputs.length;
    this.inputs.push(index);
    if (key != null) {
      this.keys ??= [];
      this.keys.push(typeof key === "string" ? encoder.encode(key) : key);
    }
    checked.forEach((value, position) => {
      if (value === null) this.nulls[position].push(rowNumber);
      this.values[position].push(value);
    });
  }

  batch() {
    return {
      output: this.output.name,
      inputs: Uint32Array.from(this.inputs),
      keys: this.keys === null ? undefined : blobs(this.keys),
      columns: this.output.columns.map((col, position) => ({
        values: columnValues(col.type, this.values[position]),
        nulls: Uint32Array.from(this.nulls[position]),
      })),
    };
  }
}

/** What one `transform` call gives back: rows of the declared outputs, and failures. */
export class Batch {
  constructor(...outputs) {
    this.rows = new Map(outputs.map((out) => [out.name, new Rows(out)]));
    this.failures = [];
  }

  /** Adds `row` (an object, by column name) made from input `index`; RowError keeps nothing. */
  push(out, index, row, key) {
    this.rows.get(typeof out === "string" ? out : out.name).push(index, row, key);
  }

  /** Input `index` failed (only `part` of it, when given), because of `field` if named. */
  fail(index, reason, { field, part } = {}) {
    this.failures.push({ index, field: field || undefined, reason: String(reason), part });
  }

  result() {
    const outputs = [...this.rows.values()].filter((rows) => rows.inputs.length > 0).map((rows) => rows.batch());
    return { outputs, failures: this.failures };
  }
}
