"""Resumable upload of a large object to a Mekong hub (PACS-19, PACS-7.1, QOS-3).

The client side of :mod:`mekong.central.uploads`: ask the hub where the object's upload stands
(``GET /api/hub/uploads/{id}`` for a remembered id, else ``POST /api/hub/uploads``, which is
idempotent and says "already stored" for known bytes), send the rest in chunks of
``chunk_bytes`` with ``Upload-Offset`` and ``Content-Digest`` (each one durable at the hub
before it answers), then ``…/complete`` and return the digest the hub stored. The caller
remembers the id and offset after every chunk (``progress``); a killed edge therefore goes on
from the last chunk the hub confirmed, never from zero. Failures raise
:class:`~mekong.edge.uplink.stowclient.RequestFailed` like a failed STOW-RS request.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as tls
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from mekong.edge.uplink.policy import transient_status
from mekong.edge.uplink.stowclient import RequestFailed
from mekong.edge.uplink.throttle import TokenBucket
from mekong.shared.http import contentdigest

log = logging.getLogger(__name__)
_PIECE = 64 * 1024
_NOT_A_HUB = (404, 405, 501)
Progress = Callable[[str, int], Awaitable[None]]


@dataclass(frozen=True)
class HubTarget:
    """Where the hub's API is and how to authenticate: a bearer token, or (an enrolled edge)
    the mutual-TLS context."""

    base: str  # e.g. https://hub:8443, no trailing slash
    token: str = ""
    ssl: tls.SSLContext | None = None

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def headers(self, **extra: str) -> dict[str, str]:
        found = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**found, **extra}


def hub_base(dicomweb_url: str) -> str:
    """The hub's base URL from the DICOMweb URL of ``[uplink] url``."""
    url = dicomweb_url.rstrip("/")
    return url[: -len("/dicom-web")] if url.endswith("/dicom-web") else url


async def probe(session: aiohttp.ClientSession, target: HubTarget) -> bool:
    """Whether the destination takes resumable uploads (``GET /api/hub/uploads``)."""
    status, body = await _call(session, "GET", target, "/api/hub/uploads")
    if status in _NOT_A_HUB:
        return False
    if status == 200:
        return body.get("resumable") is True
    raise _failed("probe", status, body)


async def upload(
    session: aiohttp.ClientSession, target: HubTarget, path: Path, digest: str, size: int,
    bucket: TokenBucket, chunk_bytes: int, upload_id: str, progress: Progress,
) -> str:  # fmt: skip
    """Send the object at ``path`` (SHA-256 ``digest``) unless the hub holds it; returns the
    SHA-256 the hub stored. ``upload_id`` is the one remembered from an earlier try, or ""."""
    found = await _start(session, target, digest, size, upload_id)
    if found.get("stored") is True:
        return str(found.get("digest", ""))
    upload_id, offset = str(found["id"]), int(found["offset"])
    if offset:
        log.info("uplink: resuming upload %s of %s at byte %d of %d", upload_id, digest[:12],
                 offset, size)  # fmt: skip
    await progress(upload_id, offset)
    conflicts = 0
    while offset < size:
        data = await asyncio.to_thread(_read, path, offset, min(chunk_bytes, size - offset))
        try:
            offset = await _patch(session, target, upload_id, offset, data, bucket)
        except _Moved as moved:  # the hub holds more or less than we thought: go on from there
            conflicts += 1
            if conflicts > 3:
                raise RequestFailed(f"upload {upload_id}: offset keeps moving", True) from None
            offset = moved.offset
        await progress(upload_id, offset)
    return await _complete(session, target, upload_id)


async def _start(
    session: aiohttp.ClientSession, target: HubTarget, digest: str, size: int, upload_id: str
) -> dict[str, Any]:
    if upload_id:
        status, body = await _call(session, "GET", target, f"/api/hub/uploads/{upload_id}")
        if status == 200 and body.get("sha256") == digest:
            return body
        if status not in (200, 404):
            raise _failed("status", status, body)
    status, body = await _call(session, "POST", target, "/api/hub/uploads",
                               json={"sha256": digest, "size": size})  # fmt: skip
    if status in (200, 201) and ("id" in body or body.get("stored") is True):
        return body
    raise _failed("start", status, body)


class _Moved(Exception):
    def __init__(self, offset: int) -> None:
        self.offset = offset


async def _patch(
    session: aiohttp.ClientSession, target: HubTarget, upload_id: str, offset: int,
    data: bytes, bucket: TokenBucket,
) -> int:  # fmt: skip
    headers = target.headers(**{
        "Upload-Offset": str(offset), contentdigest.HEADER: contentdigest.of(data),
        "Content-Type": "application/offset+octet-stream", "Content-Length": str(len(data)),
    })  # fmt: skip
    status, body = await _call(session, "PATCH", target, f"/api/hub/uploads/{upload_id}",
                               data=_paced(data, bucket), headers=headers)  # fmt: skip
    if status == 200:
        return int(body["offset"])
    if status == 409 and isinstance(body.get("offset"), int):
        raise _Moved(body["offset"])
    if status == 400 and "Content-Digest" in str(body.get("error", "")):
        raise RequestFailed(f"chunk at {offset} damaged in transit, refused by the hub", True, 400)
    raise _failed(f"chunk at {offset}", status, body)


async def _complete(session: aiohttp.ClientSession, target: HubTarget, upload_id: str) -> str:
    status, body = await _call(session, "POST", target, f"/api/hub/uploads/{upload_id}/complete")
    if status == 200 and body.get("stored") is True:
        return str(body.get("digest", ""))
    raise _failed("complete", status, body)


async def _paced(data: bytes, bucket: TokenBucket) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), _PIECE):
        piece = view[start : start + _PIECE]
        await bucket.take(len(piece))
        yield bytes(piece)


def _read(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    if len(data) != length:
        raise OSError(f"{path}: {len(data)} bytes at {offset}, expected {length}")
    return data


async def _call(
    session: aiohttp.ClientSession, method: str, target: HubTarget, path: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON object answer or {}); transport failures are transient."""
    kwargs.setdefault("headers", target.headers())
    try:
        async with session.request(method, target.url(path), ssl=target.ssl or True,
                                   **kwargs) as reply:  # fmt: skip
            try:
                body = await reply.json(content_type=None)
            except ValueError:
                body = {"error": (await reply.text(errors="replace"))[:300]}
            return reply.status, body if isinstance(body, dict) else {}
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise RequestFailed(f"{type(exc).__name__}: {exc}", transient=True) from None


def _failed(step: str, status: int, body: dict[str, Any]) -> RequestFailed:
    text = str(body.get("error", ""))[:300]
    return RequestFailed(f"resumable {step}: HTTP {status}: {text}", transient_status(status),
                         status)  # fmt: skip
