"""ECDSA P-256 / SHA-256 signing in pure Python, for signing SendGrid event webhooks.

SendGrid signs the timestamp header's bytes followed by the raw body and sends the DER
signature base64-encoded; the receiver holds the public key as base64 DER (SubjectPublicKeyInfo),
as `bench/harness/src/signing.rs` makes them. The fault suite's load generator signs every body
afresh (each one carries new event ids), and the Python it runs on has only the standard
library, so the curve arithmetic is here: Jacobian coordinates, a fixed-window table for the
base point. Not constant-time, which does not matter for a benchmark key.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)
# SubjectPublicKeyInfo for id-ecPublicKey on prime256v1, up to the uncompressed point.
SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")

Jacobian = tuple[int, int, int]
INFINITY: Jacobian = (1, 1, 0)


def _double(point: Jacobian) -> Jacobian:
    x, y, z = point
    if z == 0 or y == 0:
        return INFINITY
    ysq = y * y % P
    s = 4 * x * ysq % P
    zsq = z * z % P
    m = 3 * (x - zsq) * (x + zsq) % P  # a = -3
    nx = (m * m - 2 * s) % P
    ny = (m * (s - nx) - 8 * ysq * ysq) % P
    nz = 2 * y * z % P
    return nx, ny, nz


def _add(p1: Jacobian, p2: Jacobian) -> Jacobian:
    if p1[2] == 0:
        return p2
    if p2[2] == 0:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1sq, z2sq = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2sq % P, x2 * z1sq % P
    s1, s2 = y1 * z2sq * z2 % P, y2 * z1sq * z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else INFINITY
    h, r = (u2 - u1) % P, (s2 - s1) % P
    hsq = h * h % P
    hcu = hsq * h % P
    u1hsq = u1 * hsq % P
    nx = (r * r - hcu - 2 * u1hsq) % P
    ny = (r * (u1hsq - nx) - s1 * hcu) % P
    nz = h * z1 * z2 % P
    return nx, ny, nz


def _affine(point: Jacobian) -> tuple[int, int]:
    x, y, z = point
    zinv = pow(z, -1, P)
    zinv2 = zinv * zinv % P
    return x * zinv2 % P, y * zinv2 * zinv % P


def _window_table() -> list[list[Jacobian]]:
    """table[i][j] = j * 16^i * G, so k*G is one addition per hex digit of k."""
    table = []
    base: Jacobian = (G[0], G[1], 1)
    for _ in range(64):
        row = [INFINITY]
        for _ in range(15):
            row.append(_add(row[-1], base))
        table.append(row)
        for _ in range(4):
            base = _double(base)
    return table


_TABLE = _window_table()


def _base_multiply(k: int) -> Jacobian:
    result = INFINITY
    for i in range(64):
        digit = (k >> (4 * i)) & 0xF
        if digit:
            result = _add(result, _TABLE[i][digit])
    return result


def _der_integer(value: int) -> bytes:
    raw = value.to_bytes(32, "big").lstrip(b"\0") or b"\0"
    if raw[0] & 0x80:
        raw = b"\0" + raw
    return b"\x02" + bytes([len(raw)]) + raw


class SigningKey:
    """A P-256 private key."""

    def __init__(self, secret: int):
        if not 1 <= secret < N:
            raise ValueError("a P-256 private key is an integer in [1, n-1]")
        self.secret = secret

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(secrets.randbelow(N - 1) + 1)

    def public_key_base64(self) -> str:
        """The public key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo."""
        x, y = _affine(_base_multiply(self.secret))
        der = SPKI_PREFIX + b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
        return base64.b64encode(der).decode()

    def sign(self, message: bytes) -> str:
        """The base64 DER ECDSA-SHA256 signature of `message`."""
        e = int.from_bytes(hashlib.sha256(message).digest(), "big")
        while True:
            k = secrets.randbelow(N - 1) + 1
            r = _affine(_base_multiply(k))[0] % N
            if r == 0:
                continue
            s = pow(k, -1, N) * (e + r * self.secret) % N
            if s == 0:
                continue
            body = _der_integer(r) + _der_integer(s)
            return base64.b64encode(b"\x30" + bytes([len(body)]) + body).decode()


def sign_webhook(key: SigningKey, timestamp: int, body: bytes) -> str:
    """The X-Twilio-Email-Event-Webhook-Signature value for `body` sent at `timestamp`."""
    return key.sign(str(timestamp).encode() + body)
