// explode-status-logs in JavaScript: the second step of the user-status ETL, giving the same
// rows and failures as the Rust plugin beside it (../src) on the same records.
//
// Each `status_logs` record (`{"userId": ..., "statusLogs": [...]}`) gives one
// `user_status_log` row per entry of `statusLogs`, as the original job's Spark `explode` did:
// every entry that is an object gives a row, `updatedOn` and `status` as text (a string's
// content; any other value as its JSON text exactly as written, so `1.6445274e9` stays
// `1.6445274e9`), NULL when missing or null. A record with an entry that is not an object fails
// whole, naming every such entry, so replaying its fixed dead letter cannot insert the other
// entries twice.

import { Batch, RowError, output, text } from "../../../host/src/cli/plugin_new/js/sluice-plugin.js";
import { JsonError, LENIENT, compactText, kindOfText, parseObject, stringText } from "../../js-json/json.js";

const NAME = "explode-status-logs";
const VERSION = "0.1.0";

const USER_STATUS_LOG = output("user_status_log", [
  text("userId"),
  text("updatedOn", { nullable: true }),
  text("status", { nullable: true }),
]);

// How the Rust plugin's serde_json reads a record: member by member at the top, `statusLogs`
// item by item, and each entry member by member; the values it keeps as text it only skips.
const ENTRY = { strict: true, child: () => LENIENT };
const STATUS_LOGS = { strict: true, child: (at) => (typeof at === "number" ? ENTRY : LENIENT) };
const RECORD = {
  strict: true,
  unique: ["userId", "statusLogs"],
  child: (key) => (key === "statusLogs" ? STATUS_LOGS : LENIENT),
};

/** A non-null value as a varchar column holds it. */
function columnText(raw) {
  return stringText(raw) ?? compactText(raw);
}

/**
 * The record's members. Read as the Rust plugin reads it: in one pass, unless that pass stops
 * (broken JSON, `userId` or `statusLogs` twice, a key with an escape at the top or in an entry),
 * and then with serde_json's checks and words.
 */
function readRecord(bytes) {
  try {
    const record = parseObject(bytes, RECORD);
    const entries = record.members.get("statusLogs")?.items ?? [];
    const plain = !record.escaped && !entries.some((entry) => entry.escaped);
    if (plain && !record.repeated.has("userId") && !record.repeated.has("statusLogs")) return record.members;
  } catch (error) {
    if (!(error instanceof JsonError)) throw error;
  }
  return parseObject(bytes, RECORD, { validate: true }).members;
}

/** The record's rows, all of them, or a RowError naming what to fix. */
function explode(bytes) {
  let record;
  try {
    record = readRecord(bytes);
  } catch (error) {
    if (error instanceof JsonError) throw new RowError("", error.message);
    throw error;
  }
  const userIdValue = record.get("userId");
  if (userIdValue === undefined || userIdValue.text === "null") throw new RowError("userId", "missing or null");
  const userId = stringText(userIdValue.text);
  if (userId === undefined) throw new RowError("userId", `expected a string, found ${kindOfText(userIdValue.text)}`);
  const logs = record.get("statusLogs");
  if (logs === undefined || logs.text === "null") throw new RowError("statusLogs", "missing or null");
  if (logs.items === undefined) throw new RowError("statusLogs", `expected an array, found ${kindOfText(logs.text)}`);
  const rows = [];
  const problems = [];
  logs.items.forEach((entry, position) => {
    if (entry.members === undefined) {
      problems.push([`statusLogs[${position}]`, `expected an object, found ${kindOfText(entry.text)}`]);
      return;
    }
    const column = (name) => {
      const value = entry.members.get(name);
      return value === undefined || value.text === "null" ? null : columnText(value.text);
    };
    rows.push({ userId, updatedOn: column("updatedOn"), status: column("status") });
  });
  if (problems.length === 1) throw new RowError(problems[0][0], problems[0][1]);
  if (problems.length > 1) {
    throw new RowError("", problems.map(([field, problem]) => `${field}: ${problem}`).join("; "));
  }
  return rows;
}

export const transformer = {
  info() {
    return { name: NAME, version: VERSION, outputs: [USER_STATUS_LOG.info()] };
  },

  init(config) {
    for (const [key] of config) throw `unknown config key \`${key}\` (allowed: none)`;
  },

  transform(records) {
    const batch = new Batch(USER_STATUS_LOG);
    // Rows keep their record's key when any record of the batch has one.
    const keyed = records.some((record) => record.key != null);
    records.forEach((record, index) => {
      let rows;
      try {
        rows = explode(record.value);
      } catch (error) {
        if (!(error instanceof RowError)) throw error;
        batch.fail(index, error.reason, { field: error.field });
        return;
      }
      // Every row is pushed once the whole record is read: all of its entries or none.
      const key = keyed ? (record.key ?? new Uint8Array()) : undefined;
      for (const row of rows) batch.push(USER_STATUS_LOG, index, row, key);
    });
    return batch.result();
  },
};
