// validate-user-status in JavaScript: the first step of the user-status ETL, giving the same
// rows and failures as the Rust plugin beside it (../src) on the same records.
//
// A record is valid when all six fields are present, non-null and of the expected type:
// `userId` and `createdAt` strings, `lastVisitedAt` an integer literal within PostgreSQL `int`
// range, `status` a non-empty string, `isBlacklisted` true or false, `statusLogs` an array of
// objects. A valid record gives a `user_status` row and a `status_logs` row (the array,
// compact, for explode-status-logs); any other object gives one `user_status_error_rec` row in
// the original job's format; input that is not one JSON object is a failure.

import { Batch, RawJson, boolean, int64, json, output, text } from "../../../host/src/cli/plugin_new/js/sluice-plugin.js";
import { JsonError, compactText, readObject, stringText } from "../../js-json/json.js";

const NAME = "validate-user-status";
const VERSION = "0.1.0";

const USER_STATUS = output("user_status", [
  text("userId"),
  text("createdAt"),
  text("status"),
  int64("lastVisitedAt"),
  boolean("isBlacklisted"),
]);
const STATUS_LOGS = output("status_logs", [text("userId"), json("statusLogs")]);
const USER_STATUS_ERROR_REC = output("user_status_error_rec", [text("error_rec")]);

const FIELDS = ["userId", "createdAt", "lastVisitedAt", "status", "isBlacklisted", "statusLogs"];
// The order and labels of the original job's error text, lowercase `userid` included.
const ERROR_REC = [
  ["userid", "userId"],
  ["createdAt", "createdAt"],
  ["lastVisitedAt", "lastVisitedAt"],
  ["status", "status"],
  ["statusLogs", "statusLogs"],
  ["isBlacklisted", "isBlacklisted"],
];
const INTEGER = /^-?[0-9]+$/;
const BOOLEANS = new Map([["true", true], ["false", false]]);

/** The value of an integer literal that fits a 32-bit column; `1.0`, `1e3` and strings do not. */
function int32(raw) {
  if (raw === undefined || !INTEGER.test(raw)) return undefined;
  const number = Number(raw);
  return number >= -(2 ** 31) && number < 2 ** 31 ? number : undefined;
}

/** The array's compact text when it is an array whose entries are all objects. */
function arrayOfObjects(value) {
  if (value === undefined || value.text[0] !== "[") return undefined;
  const isObject = (entry) => entry !== null && typeof entry === "object" && !Array.isArray(entry);
  return JSON.parse(value.text).every(isObject) ? compactText(value.text) : undefined;
}

/** The typed record, or undefined when a rule of the header is broken. */
function validRow(fields) {
  const userId = stringText(fields.get("userId")?.text ?? "");
  const createdAt = stringText(fields.get("createdAt")?.text ?? "");
  const lastVisitedAt = int32(fields.get("lastVisitedAt")?.text);
  const status = stringText(fields.get("status")?.text ?? "");
  const isBlacklisted = BOOLEANS.get(fields.get("isBlacklisted")?.text);
  const statusLogs = arrayOfObjects(fields.get("statusLogs"));
  const values = [userId, createdAt, lastVisitedAt, status, isBlacklisted, statusLogs];
  if (values.includes(undefined) || status === "") return undefined;
  return { userId, createdAt, status, lastVisitedAt, isBlacklisted, statusLogs: new RawJson(statusLogs) };
}

/** `userid:<v>,createdAt:<v>,...`: null for a missing or null field, a string's content, any
 *  other value as compact JSON text. */
function errorRec(fields) {
  return ERROR_REC.map(([label, name]) => {
    const raw = fields.get(name)?.text;
    if (raw === undefined) return `${label}:null`;
    return `${label}:${stringText(raw) ?? compactText(raw)}`;
  }).join(",");
}

export const transformer = {
  info() {
    return {
      name: NAME,
      version: VERSION,
      outputs: [USER_STATUS.info(), STATUS_LOGS.info(), USER_STATUS_ERROR_REC.info()],
    };
  },

  init(config) {
    for (const [key] of config) throw `unknown config key \`${key}\` (allowed: none)`;
  },

  transform(records) {
    const batch = new Batch(USER_STATUS, STATUS_LOGS, USER_STATUS_ERROR_REC);
    // Rows keep their record's key when any record of the batch has one.
    const keyed = records.some((record) => record.key != null);
    records.forEach((record, index) => {
      const key = keyed ? (record.key ?? new Uint8Array()) : undefined;
      let members;
      try {
        members = readObject(record.value, FIELDS);
      } catch (error) {
        if (!(error instanceof JsonError)) throw error;
        batch.fail(index, error.message);
        return;
      }
      // Missing and null are alike.
      const fields = new Map([...members].filter(([name, value]) => FIELDS.includes(name) && value.text !== "null"));
      const row = validRow(fields);
      if (row === undefined) {
        batch.push(USER_STATUS_ERROR_REC, index, { error_rec: errorRec(fields) }, key);
      } else {
        batch.push(USER_STATUS, index, row, key);
        batch.push(STATUS_LOGS, index, row, key);
      }
    });
    return batch.result();
  },
};
