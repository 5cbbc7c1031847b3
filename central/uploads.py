"""Resumable upload of large objects to the hub (issue 6, PACS-19, PACS-7.1, QOS-3).

STOW-RS cannot resume: a 200 MB video cut at 190 MB starts again from zero. An edge sending to
a Mekong hub uses this instead for objects of ``uplink.resumable_bytes`` and more (images.write;
an enrolled site has it):

- ``GET /api/hub/uploads`` — the hub takes resumable uploads (the edge's probe), and the
  caller's uploads in progress.
- ``POST /api/hub/uploads`` ``{"sha256", "size"}`` — 200 ``{"stored": true, "digest"}`` when an
  instance with these bytes is already stored (nothing to send), else 201 ``{"id", "offset"}``.
  Idempotent: the same sender, digest and size give the same upload and its current offset.
- ``GET``/``HEAD /api/hub/uploads/{id}`` — ``{"offset", …}`` (also as ``Upload-Offset``).
- ``PATCH /api/hub/uploads/{id}`` with ``Upload-Offset: N`` (or ``Content-Range: bytes
  N-M/size``) and ``Content-Digest: sha-256=:…:`` — the chunk is checked against its digest,
  written at N and fsync'd before the answer ``{"offset"}``. 409 ``{"offset"}`` when N is not
  where the received bytes end, 400 when the chunk was damaged (nothing written), 507 when the
  disk is full (nothing written; retry later).
- ``POST /api/hub/uploads/{id}/complete`` — the SHA-256 of all bytes is checked (422 and the
  upload discarded when it differs), then the file is stored through the archive like a
  C-STORE (same validation; 422 for bad DICOM, 507 out of resources) and the answer carries the
  stored digest, which the edge compares before it marks the object sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re

from aiohttp import web

from mekong.central.partials import CHUNK_MAX, OffsetMismatch, Partial, PartialStore
from mekong.shared.archive import Failure
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.dicomweb.stow import STORED
from mekong.shared.http import contentdigest, keys
from mekong.shared.http.access import principal_of
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import json_object

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
STORE_KEY: web.AppKey[PartialStore] = web.AppKey("hub_uploads", PartialStore)
OFFSET_HEADER = "Upload-Offset"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_STATUS = {Failure.INVALID: 422, Failure.OUT_OF_RESOURCES: 507, Failure.INTERNAL: 500}


@routes.get("/api/hub/uploads")
@requires(Permission.IMAGES_WRITE)
async def uploads(request: web.Request) -> web.Response:
    """Resumable uploads are taken here; the caller's uploads in progress."""
    store = request.app[STORE_KEY]
    found = await asyncio.to_thread(store.owned_by, _owner(request))
    return web.json_response({"resumable": True, "chunk_max": CHUNK_MAX,
                              "uploads": [partial.public() for partial in found]})  # fmt: skip


@routes.post("/api/hub/uploads")
@requires(Permission.IMAGES_WRITE)
async def create_upload(request: web.Request) -> web.Response:
    """Start (or find again) the resumable upload of one object."""
    body = await json_object(request)
    sha256, size = body.get("sha256"), body.get("size")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise web.HTTPBadRequest(text='send {"sha256": 64 lower-case hex digits, "size": bytes}')
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise web.HTTPBadRequest(text="size must be a positive integer (bytes)")
    index = keys.node(request).index
    assert index is not None
    if await index.instance_with_digest(sha256) is not None:
        return web.json_response({"stored": True, "digest": sha256})
    store = request.app[STORE_KEY]
    try:
        partial = await asyncio.to_thread(store.open, _owner(request), sha256, size)
    except OSError as exc:
        return _error(507, f"out of resources: {exc}")
    answer = {**partial.public(), "stored": False, "chunk_max": CHUNK_MAX}
    offset = {OFFSET_HEADER: str(partial.received)}
    return web.json_response(answer, status=201, headers=offset)


@routes.get("/api/hub/uploads/{id}")
@requires(Permission.IMAGES_WRITE)
async def upload_status(request: web.Request) -> web.Response:
    """How many bytes of an upload the hub holds (the offset to continue at)."""
    partial = await _partial(request)
    return web.json_response(partial.public(), headers={OFFSET_HEADER: str(partial.received)})


@routes.patch("/api/hub/uploads/{id}")
@requires(Permission.IMAGES_WRITE)
async def append_chunk(request: web.Request) -> web.Response:
    """Append one chunk at the offset the hub reported; durable before the answer."""
    partial = await _partial(request)
    offset = _offset(request, partial)
    try:
        expected = contentdigest.expected_sha256(request.headers.get(contentdigest.HEADER))
    except contentdigest.BadDigest as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    data = await _chunk(request)
    if offset != partial.received:
        return _error(409, str(OffsetMismatch(partial.received)), offset=partial.received)
    if offset + len(data) > partial.size:
        raise web.HTTPBadRequest(text=f"the chunk ends beyond the declared size {partial.size}")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        log.warning("hub: upload %s: chunk at %d damaged in transit (Content-Digest differs)",
                    partial.id, offset)  # fmt: skip
        return _error(400, "the chunk does not match its Content-Digest: damaged in transit, "
                      "nothing written", offset=partial.received)  # fmt: skip
    store = request.app[STORE_KEY]
    async with store.lock(partial.id):
        try:
            received = await asyncio.to_thread(store.append, partial.id, offset, data)
        except OffsetMismatch as exc:
            return _error(409, str(exc), offset=exc.received)
        except OSError as exc:
            log.warning("hub: upload %s: chunk at %d not written: %s", partial.id, offset, exc)
            return _error(507, f"out of resources, nothing written: {exc}", offset=offset)
    log.info("hub: upload %s: %d bytes appended at offset %d (%d of %d)",
             partial.id, len(data), offset, received, partial.size)  # fmt: skip
    return web.json_response({"id": partial.id, "offset": received},
                             headers={OFFSET_HEADER: str(received)})  # fmt: skip


@routes.post("/api/hub/uploads/{id}/complete")
@requires(Permission.IMAGES_WRITE)
async def complete_upload(request: web.Request) -> web.Response:
    """Check the whole object's SHA-256, then store it like any C-STORE."""
    partial = await _partial(request)
    store = request.app[STORE_KEY]
    async with store.lock(partial.id):
        partial = await _partial(request)  # again: a chunk may have landed meanwhile
        if partial.received != partial.size:
            return _error(409, f"{partial.received} of {partial.size} bytes received",
                          offset=partial.received)  # fmt: skip
        digest = await asyncio.to_thread(store.digest, partial.id)
        if digest != partial.sha256:
            await asyncio.to_thread(store.discard, partial.id)
            log.warning("hub: upload %s discarded: SHA-256 %s, announced %s",
                        partial.id, digest, partial.sha256)  # fmt: skip
            return _error(422, f"the received bytes have SHA-256 {digest}, not the announced "
                          f"{partial.sha256}: upload discarded, send it again")  # fmt: skip
        return await _store(request, store, partial)


async def _store(request: web.Request, store: PartialStore, partial: Partial) -> web.Response:
    archive = keys.node(request).archive
    assert archive is not None
    source = f"UPLOAD {request.remote or ''}"[:16]
    result = await archive.store_file(store.part_path(partial.id), source, partial.sha256)
    await asyncio.to_thread(store.discard, partial.id)  # stored or refused: the file is gone
    detail = {"upload": partial.id, "size": partial.size, "sop_uid": result.sop_uid}
    record(request, "images.store", outcome="success" if result.ok else "failure",
           object=result.study_uid, patient_id=result.patient_id, detail=detail)  # fmt: skip
    if not result.ok:
        assert result.failure is not None
        return _error(_STATUS[result.failure], f"not stored: {result.message}",
                      reason=result.failure.value)  # fmt: skip
    listener = request.app.get(STORED)
    if listener is not None and result.study_uid:
        await listener(request, {result.study_uid: 1})
    log.info("hub: upload %s stored as %s (%d bytes)", partial.id, result.sop_uid, partial.size)
    outcome = result.outcome.value if result.outcome else ""
    return web.json_response({"stored": True, "digest": result.digest, "sop_uid": result.sop_uid,
                              "outcome": outcome})  # fmt: skip


async def _partial(request: web.Request) -> Partial:
    store = request.app[STORE_KEY]
    upload_id = request.match_info["id"]
    found = await asyncio.to_thread(store.get, upload_id, _owner(request))
    if found is None:
        raise web.HTTPNotFound(
            text=f"no upload {upload_id} in progress (finished, or deleted "
            "after a long pause): start it again with POST /api/hub/uploads"
        )
    return found


def _offset(request: web.Request, partial: Partial) -> int:
    """Where the chunk goes: ``Upload-Offset``, or the start of ``Content-Range``."""
    text = request.headers.get(OFFSET_HEADER)
    if text is None and (found := _RANGE.fullmatch(request.headers.get("Content-Range", ""))):
        text = found.group(1)
    if text is None or not text.isdigit():
        raise web.HTTPBadRequest(text=f"send the chunk's offset as {OFFSET_HEADER}: N "
                                 "(or Content-Range: bytes N-M/size)")  # fmt: skip
    return int(text)


async def _chunk(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > CHUNK_MAX:
        raise web.HTTPRequestEntityTooLarge(max_size=CHUNK_MAX,
                                            actual_size=request.content_length)  # fmt: skip
    pieces, total = [], 0
    async for piece in request.content.iter_chunked(1024 * 1024):
        total += len(piece)
        if total > CHUNK_MAX:
            raise web.HTTPRequestEntityTooLarge(max_size=CHUNK_MAX, actual_size=total)
        pieces.append(piece)
    if not total:
        raise web.HTTPBadRequest(text="the chunk is empty")
    return b"".join(pieces)


def _owner(request: web.Request) -> str:
    principal = principal_of(request)
    return principal.name if principal else "anonymous"


def _error(status: int, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": message, "status": status, **extra}, status=status)
