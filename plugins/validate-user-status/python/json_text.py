"""JSON read the way the Rust plugins read a record: every member's value kept as its text
exactly as written (a number stays `1e3`), and broken JSON refused with serde_json's words and
position (`EOF while parsing a value at line 1 column 30`), so a dead letter says the same thing
whichever plugin refused it. Works on the record's bytes, since serde_json counts columns in
bytes.

The record itself is read member by member (a trailing comma is refused, names are checked
strictly, a name of `unique` written twice refuses it as a derived serde struct does); the
values are only skipped over and kept as text, as serde_json's raw values are.
"""

import json
import re


class JsonError(Exception):
    """A record that is not what the plugin reads, with the reason a dead letter shows."""


def kind_of_text(text):
    """`a string`, `an object`, ... for valid JSON text, as failure reasons name kinds."""
    return {'"': "a string", "{": "an object", "[": "an array", "t": "a boolean", "f": "a boolean", "n": "null"}.get(
        text[:1], "a number"
    )


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ANY_WHITESPACE = re.compile("[ \n\t\r]")


def string_text(text):
    """The content of a JSON string's text; None for any other kind of value, or for a string
    whose escapes do not make text (a lone surrogate)."""
    if not text.startswith('"'):
        return None
    inner = text[1:-1]
    if "\\" not in inner:
        return inner
    try:
        content = json.loads(text)
    except ValueError:
        return None
    return None if _LONE_SURROGATE.search(content) else content


def compact_text(text):
    """Valid JSON text without whitespace outside its strings."""
    if not _ANY_WHITESPACE.search(text):
        return text
    out = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            out.append(char)
        elif char == '"':
            in_string = True
            out.append(char)
        elif char not in " \n\t\r":
            out.append(char)
    return "".join(out)


_WHITESPACE = b" \n\t\r"
_HEX = set(b"0123456789abcdefABCDEF")
# Runs the reader skips in one step, in the `re` module's C code, instead of byte by byte.
_DIGIT_RUN = re.compile(rb"[0-9]*")
_PLAIN_STRING_RUN = re.compile(rb'[^"\\\x00-\x1f]*')


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


# Reads standard JSON only: NaN and Infinity, which the json module takes, are not JSON.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


class _Reader:
    def __init__(self, data):
        self.data = data
        self.at = 0
        # For ASCII text, a character's index is its byte's, so the C decoder can skip values.
        self.ascii_text = data.decode("ascii") if data.isascii() else None

    def position(self, index):
        before = self.data[: min(index, len(self.data))]
        newline = before.rfind(b"\n")
        line = before.count(b"\n") + 1
        return f"line {line} column {len(before) - newline - 1}"

    def fail(self, message):
        """An error at the last byte read (serde_json's `error`)."""
        return JsonError(f"not valid JSON: {message} at {self.position(self.at)}")

    def fail_ahead(self, message):
        """An error at the byte looked at next (serde_json's `peek_error`)."""
        return JsonError(f"not valid JSON: {message} at {self.position(min(self.at + 1, len(self.data)))}")

    def peek(self):
        data = self.data
        while self.at < len(data) and data[self.at] in _WHITESPACE:
            self.at += 1
        return data[self.at] if self.at < len(data) else None

    def text(self, start):
        return self.data[start : self.at].decode()

    def value(self):
        """A value skipped over, as its text."""
        byte = self.peek()
        if byte is None:
            raise self.fail_ahead("EOF while parsing a value")
        start = self.at
        if (byte == ord("{") or byte == ord("[")) and self.skip_in_c():
            return self.text(start)
        if byte == ord("{"):
            self.container(ord("}"), strict=False)
        elif byte == ord("["):
            self.container(ord("]"), strict=False)
        elif byte == ord('"'):
            self.string(strict=False)
        elif byte == ord("t"):
            self.word(b"true")
        elif byte == ord("f"):
            self.word(b"false")
        elif byte == ord("n"):
            self.word(b"null")
        elif byte == ord("-") or ord("0") <= byte <= ord("9"):
            self.number()
        else:
            raise self.fail_ahead("expected value")
        return self.text(start)

    def skip_in_c(self):
        """Skips the array or object that starts next with the json module's C decoder, when
        the text is ASCII and the decoder reads it: JSON it reads, this reader reads too, to the
        same end. Anything else (NaN, a trailing comma, broken JSON) is left to the byte-by-byte
        reading, which refuses it with serde_json's words or skips it as serde_json does."""
        if self.ascii_text is None:
            return False
        try:
            _, end = _DECODER.raw_decode(self.ascii_text, self.at)
        except (ValueError, RecursionError):
            return False
        self.at = end
        return True

    def word(self, word):
        for expected in word:
            if self.at >= len(self.data):
                raise self.fail("EOF while parsing a value")
            byte = self.data[self.at]
            self.at += 1
            if byte != expected:
                raise self.fail("expected ident")

    def is_digit(self):
        return self.at < len(self.data) and ord("0") <= self.data[self.at] <= ord("9")

    def skip_digits(self):
        self.at = _DIGIT_RUN.match(self.data, self.at).end()

    def number(self):
        """A number skipped over (serde_json's `ignore_number`)."""
        data = self.data
        if data[self.at] == ord("-"):
            self.at += 1
        first = data[self.at] if self.at < len(data) else None
        self.at = min(self.at + 1, len(data))
        if first == ord("0"):
            if self.is_digit():
                raise self.fail_ahead("invalid number")
        elif first is not None and ord("1") <= first <= ord("9"):
            self.skip_digits()
        else:
            raise self.fail("invalid number")
        if self.at < len(data) and data[self.at] == ord("."):
            self.at += 1
            if not self.is_digit():
                raise self.fail_ahead("invalid number")
            self.skip_digits()
        if self.at < len(data) and data[self.at] in b"eE":
            self.at += 1
            if self.at < len(data) and data[self.at] in b"+-":
                self.at += 1
            digit = self.is_digit()
            self.at = min(self.at + 1, len(data))
            if not digit:
                raise self.fail("invalid number")
            self.skip_digits()

    def hex(self):
        if self.at + 4 > len(self.data):
            self.at = len(self.data)
            raise self.fail("EOF while parsing a string")
        digits = self.data[self.at : self.at + 4]
        self.at += 4
        if not all(digit in _HEX for digit in digits):
            raise self.fail("invalid escape")
        return int(digits, 16)

    def escape(self, strict):
        """The escape after a backslash; read strictly (a name), surrogates must pair."""
        if self.at >= len(self.data):
            raise self.fail("EOF while parsing a string")
        escape = self.data[self.at]
        self.at += 1
        if escape in b'"\\/bfnrt':
            return
        if escape != ord("u"):
            raise self.fail("invalid escape")
        code = self.hex()
        if not strict or not 0xD800 <= code <= 0xDFFF:
            return
        if code >= 0xDC00:
            raise self.fail("lone leading surrogate in hex escape")
        for expected in b"\\u":
            if self.at >= len(self.data):
                raise self.fail("EOF while parsing a string")
            byte = self.data[self.at]
            self.at += 1
            if byte != expected:
                raise self.fail("unexpected end of hex escape")
        if not 0xDC00 <= self.hex() <= 0xDFFF:
            raise self.fail("lone leading surrogate in hex escape")

    def string(self, strict):
        """A string whose opening quote is next, with its quotes."""
        data = self.data
        start = self.at
        self.at += 1
        while True:
            self.at = _PLAIN_STRING_RUN.match(data, self.at).end()
            if self.at >= len(data):
                raise self.fail("EOF while parsing a string")
            byte = data[self.at]
            if byte < 0x20:
                if strict:
                    self.at += 1
                raise self.fail("control character (\\u0000-\\u001F) found while parsing a string")
            self.at += 1
            if byte == ord('"'):
                return self.text(start)
            if byte == ord("\\"):
                self.escape(strict)

    def container(self, close, strict, members=None, unique=()):
        """An array or object whose opening bracket is next. `strict` reads it as a plugin reads
        its record (see the module docs); `members` then collects an object's values by name."""
        obj = close == ord("}")
        self.at += 1
        first = True
        while True:
            byte = self.peek()
            if byte == close:
                break
            if byte is None:
                raise self.fail_ahead("EOF while parsing an object" if obj else "EOF while parsing a list")
            if not first:
                if byte != ord(","):
                    raise self.fail_ahead("expected `,` or `}`" if obj else "expected `,` or `]`")
                self.at += 1
                byte = self.peek()
                if byte == close and strict:
                    raise self.fail_ahead("trailing comma")
                if obj and byte is None:
                    raise self.fail_ahead("EOF while parsing a value" if strict else "EOF while parsing an object")
            first = False
            if not obj:
                self.value()
                continue
            if byte != ord('"'):
                raise self.fail_ahead("key must be a string")
            key = self.string(strict)
            name = key[1:-1] if "\\" not in key else json.loads(key)
            if members is not None and name in members and name in unique:
                raise JsonError(f"not a valid record: duplicate field `{name}` at {self.position(self.at)}")
            colon = self.peek()
            if colon is None:
                raise self.fail_ahead("EOF while parsing an object")
            if colon != ord(":"):
                raise self.fail_ahead("expected `:`")
            self.at += 1
            value = self.value()
            if members is not None:
                members[name] = value
        self.at += 1

    def end(self):
        if self.peek() is not None:
            raise self.fail_ahead("trailing characters")


def _invalid_utf8_at(data):
    try:
        data.decode()
        return None
    except UnicodeDecodeError as error:
        return error.start


def read_object(data, unique=()):
    """The members of the record `data` as {name: JSON text}; JsonError says why it is not one
    JSON object (a name of `unique` written twice included)."""
    reader = _Reader(data)
    if reader.peek() == ord("{"):
        invalid = _invalid_utf8_at(data)
        if invalid is not None:
            raise JsonError(f"not valid JSON: invalid UTF-8 at byte {invalid}")
        members = {}
        reader.container(ord("}"), strict=True, members=members, unique=unique)
        reader.end()
        return members
    # Text that is not an object is only checked to be JSON, as serde_json's raw value does.
    text = reader.value()
    reader.end()
    raise JsonError(f"expected a JSON object, found {kind_of_text(text)}")
