// The JSON reader of the JavaScript ports of the Rust plugins (plugins/*/js), shared so each
// port refuses a record as its Rust plugin does. It reads JSON the way those plugins read it:
// every value keeps its text exactly as written (a number stays `1.6445274e9`, not
// 1644527400), and broken JSON is refused with serde_json's words and position (`EOF while
// parsing a value at line 1 column 30`), so a dead letter says the same thing whichever plugin
// refused it. Works on the record's bytes, since serde_json counts columns in bytes.

const decoder = new TextDecoder("utf-8", { fatal: true });
// For the values' texts: an object's bytes are checked as UTF-8 before it is read, and the
// text of anything else after it is (see `parseObject`).
const lenientDecoder = new TextDecoder("utf-8");

/** A record that is not what the plugin reads, with the reason a dead letter shows. */
export class JsonError extends Error {}

/** `a string`, `an object`, ... for valid JSON text, as failure reasons name kinds. */
export function kindOfText(text) {
  switch (text[0]) {
    case '"': return "a string";
    case "{": return "an object";
    case "[": return "an array";
    case "t": case "f": return "a boolean";
    case "n": return "null";
    default: return "a number";
  }
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The content of a JSON string's text, or undefined for any other kind of value, or for a
 *  string whose escapes do not make text (a lone surrogate). */
export function stringText(text) {
  if (text[0] !== '"') return undefined;
  const inner = text.slice(1, -1);
  if (!inner.includes("\\")) return inner;
  try {
    const content = JSON.parse(text);
    return LONE_SURROGATE.test(content) ? undefined : content;
  } catch {
    return undefined;
  }
}

/** Valid JSON text without whitespace outside its strings. */
export function compactText(text) {
  if (!/[ \n\t\r]/.test(text)) return text;
  let out = "";
  let inString = false;
  let escaped = false;
  for (const char of text) {
    if (inString) {
      if (escaped) escaped = false;
      else if (char === "\\") escaped = true;
      else if (char === '"') inString = false;
      out += char;
    } else if (char === '"') {
      inString = true;
      out += char;
    } else if (char !== " " && char !== "\n" && char !== "\t" && char !== "\r") {
      out += char;
    }
  }
  return out;
}

/** Where serde_json would say a byte is: its line, and its column counted in bytes. */
function position(bytes, index) {
  let line = 1;
  let column = 0;
  for (let at = 0; at < index && at < bytes.length; at += 1) {
    if (bytes[at] === 0x0a) {
      line += 1;
      column = 0;
    } else {
      column += 1;
    }
  }
  return `line ${line} column ${column}`;
}

/** The index of the first byte that is not UTF-8, or -1 and the text. */
function invalidUtf8At(bytes) {
  try {
    return [-1, decoder.decode(bytes)];
  } catch {
    let at = 0;
    while (at < bytes.length) {
      const byte = bytes[at];
      const length = byte < 0x80 ? 1 : byte >= 0xc2 && byte < 0xe0 ? 2 : byte >= 0xe0 && byte < 0xf0 ? 3 : byte >= 0xf0 && byte < 0xf5 ? 4 : 0;
      if (length === 0 || at + length > bytes.length) return [at];
      try {
        decoder.decode(bytes.subarray(at, at + length));
      } catch {
        return [at];
      }
      at += length;
    }
    return [-1];
  }
}

const SYNTAX = "not valid JSON";

// Runs the reader skips in one step, in the engine's regular expression code, instead of
// character by character (in ASCII text only, where characters are bytes).
const DIGIT_RUN = /[0-9]*/y;
const PLAIN_STRING_RUN = /[^"\\\x00-\x1f]*/y;

/** Where the run of `pattern` (sticky, matching the empty string too) from `at` ends. */
function runEnd(pattern, text, at) {
  pattern.lastIndex = at;
  pattern.test(text);
  return pattern.lastIndex;
}

/**
 * How strictly an array or object is read, as serde_json reads it: one a plugin reads member
 * by member or item by item (`strict`) refuses a trailing comma; one it only skips or keeps as
 * text does not notice it and fails on the bracket after it instead. `child` gives the rule of
 * a member (by key) or an item (by index); `unique` lists the keys of a record's fields that a
 * derived serde struct refuses to see twice.
 */
export const LENIENT = { strict: false, child: () => LENIENT };

class Reader {
  /** `validate`: check what serde_json checks and the Rust plugins' one-pass scanner does not
   *  (paired surrogates in escapes, numbers in range), in the values read strictly. */
  constructor(bytes, validate) {
    this.bytes = bytes;
    this.validate = validate;
    this.at = 0;
    // The record's text when it is ASCII, where a character's index is its byte's: values'
    // texts are then slices of it instead of decodings of their bytes.
    this.ascii = null;
  }

  /** Takes the record's `text`, decoded from all of its bytes. */
  decoded(text) {
    if (text.length === this.bytes.length) this.ascii = text;
  }

  /** An error at the last byte read (serde_json's `error`). */
  fail(message) {
    return new JsonError(`${SYNTAX}: ${message} at ${position(this.bytes, this.at)}`);
  }

  /** An error at the byte looked at next (serde_json's `peek_error`). */
  failAhead(message) {
    return new JsonError(`${SYNTAX}: ${message} at ${position(this.bytes, Math.min(this.at + 1, this.bytes.length))}`);
  }

  /** The next byte that is not whitespace, left unread; undefined at the end. */
  peek() {
    const bytes = this.bytes;
    while (this.at < bytes.length) {
      const byte = bytes[this.at];
      if (byte !== 0x20 && byte !== 0x0a && byte !== 0x09 && byte !== 0x0d) return byte;
      this.at += 1;
    }
    return undefined;
  }

  text(start) {
    if (this.ascii !== null) return this.ascii.slice(start, this.at);
    return lenientDecoder.decode(this.bytes.subarray(start, this.at));
  }

  /** One value: `{text}`, plus for an object `members` (a Map, the last of a repeated key
   *  winning), `repeated` (the keys written more than once) and `escaped` (whether a key has an
   *  escape), or for an array `items`. `rule` says whether this value, if an array or object,
   *  refuses a trailing comma, and the rule of each member or item (see `Rule`). */
  value(rule = LENIENT) {
    const byte = this.peek();
    if (byte === undefined) throw this.failAhead("EOF while parsing a value");
    const start = this.at;
    if (rule === LENIENT) {
      // Kept as text only: nothing inside it is looked at again.
      this.skip();
      return { text: this.text(start) };
    }
    switch (byte) {
      case 0x7b: return this.object(start, rule);
      case 0x5b: return this.array(start, rule);
      case 0x22: this.string(rule.strict); break;
      case 0x74: this.word("true"); break;
      case 0x66: this.word("false"); break;
      case 0x6e: this.word("null"); break;
      default:
        if (byte === 0x2d || (byte >= 0x30 && byte <= 0x39)) this.number(rule.strict);
        else throw this.failAhead("expected value");
    }
    return { text: this.text(start) };
  }

  /** One value read as `value` reads it by the LENIENT rule, with the same errors, keeping
   *  nothing: no members, items or texts. */
  skip() {
    const byte = this.peek();
    if (byte === undefined) throw this.failAhead("EOF while parsing a value");
    switch (byte) {
      case 0x7b: this.object(this.at, LENIENT, false); break;
      case 0x5b: this.array(this.at, LENIENT, false); break;
      case 0x22: this.string(false); break;
      case 0x74: this.word("true"); break;
      case 0x66: this.word("false"); break;
      case 0x6e: this.word("null"); break;
      default:
        if (byte === 0x2d || (byte >= 0x30 && byte <= 0x39)) this.number(false);
        else throw this.failAhead("expected value");
    }
  }

  word(word) {
    for (let index = 0; index < word.length; index += 1) {
      if (this.at >= this.bytes.length) throw this.fail("EOF while parsing a value");
      const byte = this.bytes[this.at];
      this.at += 1;
      if (byte !== word.charCodeAt(index)) throw this.fail("expected ident");
    }
  }

  isDigit(at = this.at) {
    return at < this.bytes.length && this.bytes[at] >= 0x30 && this.bytes[at] <= 0x39;
  }

  skipDigits() {
    if (this.ascii !== null) {
      this.at = runEnd(DIGIT_RUN, this.ascii, this.at);
      return;
    }
    while (this.isDigit()) this.at += 1;
  }

  /** A number; read `strict`ly (as a value a plugin reads) or skipped, which words a few
   *  errors at the end of the text differently. */
  number(strict) {
    const start = this.at;
    const length = this.bytes.length;
    if (this.bytes[this.at] === 0x2d) {
      this.at += 1;
      if (this.at >= length) throw this.fail(strict ? "EOF while parsing a value" : "invalid number");
    }
    const first = this.bytes[this.at];
    this.at += 1;
    if (first === 0x30) {
      if (this.isDigit()) throw this.failAhead("invalid number");
    } else if (first >= 0x31 && first <= 0x39) {
      this.skipDigits();
    } else {
      throw this.fail("invalid number");
    }
    if (this.bytes[this.at] === 0x2e) {
      this.at += 1;
      if (!this.isDigit()) {
        throw this.failAhead(strict && this.at >= length ? "EOF while parsing a value" : "invalid number");
      }
      this.skipDigits();
    }
    if (this.bytes[this.at] === 0x65 || this.bytes[this.at] === 0x45) {
      this.at += 1;
      if (this.bytes[this.at] === 0x2b || this.bytes[this.at] === 0x2d) this.at += 1;
      if (this.at >= length) throw this.fail(strict ? "EOF while parsing a value" : "invalid number");
      const digit = this.isDigit();
      this.at += 1;
      if (!digit) throw this.fail("invalid number");
      this.skipDigits();
    }
    if (strict && this.validate && !Number.isFinite(Number(this.text(start)))) {
      throw this.fail("number out of range");
    }
  }

  /** Four hex digits of a `\\u` escape. */
  hex() {
    if (this.at + 4 > this.bytes.length) {
      this.at = this.bytes.length;
      throw this.fail("EOF while parsing a string");
    }
    const digits = String.fromCharCode(...this.bytes.subarray(this.at, this.at + 4));
    this.at += 4;
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) throw this.fail("invalid escape");
    return parseInt(digits, 16);
  }

  /** The byte after an escape's backslash, read; strict reading also pairs surrogates. */
  escape(strict) {
    if (this.at >= this.bytes.length) throw this.fail("EOF while parsing a string");
    const escape = this.bytes[this.at];
    this.at += 1;
    if ('"\\/bfnrt'.includes(String.fromCharCode(escape))) return;
    if (escape !== 0x75) throw this.fail("invalid escape");
    const code = this.hex();
    if (!strict || !this.validate || code < 0xd800 || code > 0xdfff) return;
    if (code >= 0xdc00) throw this.fail("lone leading surrogate in hex escape");
    for (const expected of [0x5c, 0x75]) {
      if (this.at >= this.bytes.length) throw this.fail("EOF while parsing a string");
      const byte = this.bytes[this.at];
      this.at += 1;
      if (byte !== expected) throw this.fail("unexpected end of hex escape");
    }
    const low = this.hex();
    if (low < 0xdc00 || low > 0xdfff) throw this.fail("lone leading surrogate in hex escape");
  }

  /** A string whose opening quote is next, read `strict`ly (a key, or a value a plugin reads)
   *  or skipped. */
  string(strict) {
    const bytes = this.bytes;
    this.at += 1;
    for (;;) {
      if (this.ascii !== null) this.at = runEnd(PLAIN_STRING_RUN, this.ascii, this.at);
      if (this.at >= bytes.length) throw this.fail("EOF while parsing a string");
      const byte = bytes[this.at];
      if (byte < 0x20) {
        if (strict) this.at += 1;
        throw this.fail("control character (\\u0000-\\u001F) found while parsing a string");
      }
      this.at += 1;
      if (byte === 0x22) return;
      if (byte === 0x5c) this.escape(strict);
    }
  }

  /** An object; with `keep` unset only skipped, as `skip` does. */
  object(start, rule, keep = true) {
    this.at += 1;
    const members = keep ? new Map() : undefined;
    const repeated = keep ? new Set() : undefined;
    let escaped = false;
    let first = true;
    for (;;) {
      let byte = this.peek();
      if (byte === 0x7d) break;
      if (byte === undefined) throw this.failAhead("EOF while parsing an object");
      if (!first) {
        if (byte !== 0x2c) throw this.failAhead("expected `,` or `}`");
        this.at += 1;
        byte = this.peek();
        if (byte === 0x7d && rule.strict) throw this.failAhead("trailing comma");
        if (byte === undefined) throw this.failAhead(rule.strict ? "EOF while parsing a value" : "EOF while parsing an object");
      }
      first = false;
      if (byte !== 0x22) throw this.failAhead("key must be a string");
      const keyStart = this.at;
      this.string(rule.strict);
      if (!keep) {
        this.member(rule);
        continue;
      }
      const keyText = this.text(keyStart);
      const key = JSON.parse(keyText);
      escaped ||= keyText.includes("\\");
      if (members.has(key)) {
        // A derived serde struct refuses a field twice as soon as it reads the second name.
        if (this.validate && rule.unique?.includes(key)) {
          throw new JsonError(`not a valid record: duplicate field \`${key}\` at ${position(this.bytes, this.at)}`);
        }
        repeated.add(key);
      }
      members.set(key, this.member(rule, key));
    }
    this.at += 1;
    return keep ? { text: this.text(start), members, escaped, repeated } : undefined;
  }

  /** The colon after a member's name and its value, read by the rule for `key`; only skipped
   *  without a key. */
  member(rule, key) {
    const colon = this.peek();
    if (colon === undefined) throw this.failAhead("EOF while parsing an object");
    if (colon !== 0x3a) throw this.failAhead("expected `:`");
    this.at += 1;
    if (key === undefined) return this.skip();
    return this.value(rule.child(key));
  }

  /** An array; with `keep` unset only skipped, as `skip` does. */
  array(start, rule, keep = true) {
    this.at += 1;
    const items = [];
    let first = true;
    for (;;) {
      let byte = this.peek();
      if (byte === 0x5d) break;
      if (byte === undefined) throw this.failAhead("EOF while parsing a list");
      if (!first) {
        if (byte !== 0x2c) throw this.failAhead("expected `,` or `]`");
        this.at += 1;
        if (this.peek() === 0x5d && rule.strict) throw this.failAhead("trailing comma");
      }
      first = false;
      if (keep) items.push(this.value(rule.child(items.length)));
      else this.skip();
    }
    this.at += 1;
    return keep ? { text: this.text(start), items } : undefined;
  }

  /** Nothing but whitespace may follow the value. */
  end() {
    if (this.peek() !== undefined) throw this.failAhead("trailing characters");
  }
}

/**
 * The record `bytes` as one JSON object read by `rule` (see `Reader.value`), with what serde_json
 * checks when `validate` is set: then a key of the rule's `unique` written twice refuses the
 * record, as a derived serde struct does.
 */
export function parseObject(bytes, rule, { validate = false } = {}) {
  const reader = new Reader(bytes, validate);
  if (reader.peek() === 0x7b) {
    const [invalid, text] = invalidUtf8At(bytes);
    if (invalid >= 0) throw new JsonError(`${SYNTAX}: invalid UTF-8 at byte ${invalid}`);
    reader.decoded(text);
    const record = reader.value(rule);
    reader.end();
    return record;
  }
  // Text that is not an object is only checked to be JSON, as serde_json's raw value does,
  // and then its bytes to be UTF-8, before anything after it is looked at.
  const start = reader.at;
  const value = reader.value(LENIENT);
  const [invalid] = invalidUtf8At(bytes.subarray(start, reader.at));
  if (invalid >= 0) {
    throw new JsonError(`${SYNTAX}: invalid unicode code point at ${position(bytes, start + invalid + 1)}`);
  }
  reader.end();
  throw new JsonError(`expected a JSON object, found ${kindOfText(value.text)}`);
}

/**
 * The members of the record `bytes` (a Map, the last of a repeated name winning), read in one
 * pass as serde_json reads it into a derived struct of raw values: names strictly, each value
 * only skipped and kept as `Reader.value` gives it, a name of `unique` written twice refusing
 * the record.
 */
export function readObject(bytes, unique = []) {
  return parseObject(bytes, { strict: true, unique, child: () => LENIENT }, { validate: true }).members;
}
