"""Time-based one-time passwords (RFC 6238, SHA-1, 6 digits, 30 s) for admins (SEC-6.4)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote

STEP, DIGITS = 30, 6


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def code(secret: str, at: float | None = None) -> str:
    counter = int((time.time() if at is None else at) // STEP)
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def verify(secret: str, given: str, at: float | None = None) -> bool:
    """Accepts the current code and its neighbours (clock drift of one step)."""
    now = time.time() if at is None else at
    given = given.strip().replace(" ", "")
    return any(hmac.compare_digest(code(secret, now + d * STEP), given) for d in (-1, 0, 1))


def provisioning_uri(secret: str, username: str, issuer: str = "Mekong") -> str:
    return (
        f"otpauth://totp/{quote(issuer)}:{quote(username)}?secret={secret}&issuer={quote(issuer)}"
    )
