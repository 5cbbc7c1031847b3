"""``Content-Digest`` (RFC 9530) with SHA-256: how a sender says which bytes it meant to send,
so a receiver can refuse what was damaged on the way (PACS-19, PACS-7.1).

The uplink puts it on every STOW-RS part and every chunk of a resumable upload; the hub checks
it before anything is stored. Other algorithms in the header are ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

HEADER = "Content-Digest"
_SHA256 = re.compile(r"(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/=]*):", re.IGNORECASE)


class BadDigest(ValueError):
    """A ``Content-Digest`` header that names SHA-256 but cannot be read."""


def header_value(sha256_hex: str) -> str:
    """The header value for a SHA-256 given in hex (as the blob store names blobs)."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"


def of(data: bytes | memoryview) -> str:
    return header_value(hashlib.sha256(data).hexdigest())


def expected_sha256(value: str | None) -> str | None:
    """The SHA-256 (hex) a header value announces; None when it announces none."""
    if not value:
        return None
    found = _SHA256.search(value)
    if found is None:
        return None
    try:
        raw = base64.b64decode(found.group(1), validate=True)
    except binascii.Error:
        raise BadDigest(f"{HEADER}: sha-256 value is not base64") from None
    if len(raw) != 32:
        raise BadDigest(f"{HEADER}: sha-256 value must be 32 bytes, got {len(raw)}")
    return raw.hex()
