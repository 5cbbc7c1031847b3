"""STOW-RS client for the uplink (PACS-19): one ``multipart/related; type="application/dicom"``
request per batch, and the destination's answer per SOP Instance UID.

A Mekong destination echoes the SHA-256 of what it stored in each 0008,1199 item (private
element, see :mod:`mekong.shared.dicomweb.stow`); another DICOMweb PACS only says "stored".
Each part carries ``Content-Digest`` (RFC 9530) when its digest is known, so a Mekong
destination refuses a part damaged in transit instead of storing it.
"""

from __future__ import annotations

import secrets
import ssl as tls
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from mekong.edge.uplink.policy import transient_status
from mekong.edge.uplink.throttle import TokenBucket
from mekong.shared.dicomweb.stow import DIGEST_CREATOR, DIGEST_CREATOR_TAG, DIGEST_TAG
from mekong.shared.http import contentdigest

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Answer:
    stored: bool
    digest: str | None = None  # the destination's SHA-256 of its copy, when it says
    reason: int | None = None  # Failure Reason (0008,1197) of a refused instance
    text: str = ""


class RequestFailed(Exception):
    """The request as a whole failed: no per-instance answer."""

    def __init__(self, message: str, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status  # the HTTP status, when there was an answer


async def store(
    session: aiohttp.ClientSession, url: str, token: str, parts: list[bytes],
    bucket: TokenBucket, ssl: tls.SSLContext | None = None, digests: list[str] | None = None,
) -> dict[str, Answer]:  # fmt: skip
    """POST ``parts`` to ``{url}/studies``; the destination's answer by SOP Instance UID.

    ``token`` is sent as a bearer token when set; ``ssl`` (a client certificate and the pinned
    hub CA: an enrolled edge) replaces the default certificate check; ``digests`` (SHA-256 hex
    of each part) become the parts' ``Content-Digest`` headers."""
    boundary = f"mekong-{secrets.token_hex(12)}"
    headers = {
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = _body(parts, boundary, bucket, digests or [])
    target = f"{url.rstrip('/')}/studies"
    try:
        async with session.post(target, data=body, headers=headers, ssl=ssl or True) as reply:
            if reply.status not in (200, 202, 409) or "json" not in reply.content_type:
                text = (await reply.text(errors="replace"))[:300]
                transient = transient_status(reply.status)
                raise RequestFailed(f"HTTP {reply.status}: {text}", transient, reply.status)
            return parse_response(await reply.json(content_type=None))
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise RequestFailed(f"{type(exc).__name__}: {exc}", transient=True) from None
    except ValueError as exc:  # a body that is not the JSON it claims
        raise RequestFailed(f"unreadable answer: {exc}", transient=True) from None


async def _body(
    parts: list[bytes], boundary: str, bucket: TokenBucket, digests: list[str]
) -> AsyncIterator[bytes]:
    for number, part in enumerate(parts):
        digest = digests[number] if number < len(digests) else ""
        check = (
            f"{contentdigest.HEADER}: {contentdigest.header_value(digest)}\r\n" if digest else ""
        )
        head = f"--{boundary}\r\nContent-Type: application/dicom\r\n{check}\r\n".encode()
        for chunk in (head, *_chunks(part), b"\r\n"):
            await bucket.take(len(chunk))
            yield chunk
    yield f"--{boundary}--\r\n".encode()


def _chunks(data: bytes) -> list[memoryview]:
    view = memoryview(data)
    return [view[start : start + _CHUNK] for start in range(0, len(data), _CHUNK)]


def parse_response(body: dict) -> dict[str, Answer]:
    """Answers by SOP Instance UID from a STOW-RS response (PS3.18 §10.5.3)."""
    answers: dict[str, Answer] = {}
    for item in _items(body, "00081198"):
        reason = _first(item, "00081197")
        answers[str(_first(item, "00081155"))] = Answer(
            False, reason=int(reason) if reason is not None else None,
            text=str(_first(item, "0040A160") or ""),
        )  # fmt: skip
    for item in _items(body, "00081199"):
        mekong = _first(item, DIGEST_CREATOR_TAG) == DIGEST_CREATOR
        digest = str(_first(item, DIGEST_TAG) or "") if mekong else None
        answers[str(_first(item, "00081155"))] = Answer(True, digest=digest or None)
    return answers


def _items(body: dict, tag: str) -> list[dict]:
    element = body.get(tag) or {}
    return [item for item in element.get("Value", []) if isinstance(item, dict)]


def _first(item: dict, tag: str) -> object:
    values = (item.get(tag) or {}).get("Value") or [None]
    return values[0]
