"""``PUT /api/hub/originals/{sop_uid}``: an enrolled edge delivers the non-DICOM original (JPEG,
PNG, PDF, MP4) an instance was made from, once the instance itself is at the hub (issue 6 item
2; PACS-5.4 at the hub). Headers: ``Content-Type`` (its media type), ``X-Mekong-SHA256`` (hex),
``X-Mekong-Filename`` (percent-encoded), ``X-Mekong-Accession``, ``X-Mekong-Device``. The body
is streamed to a temporary file while hashed and kept only when the SHA-256 matches; the
answer repeats it. Delivered twice, it is linked once. 409 while the instance is not here yet
(the edge tries again later)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web
from sqlalchemy import select

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.db import originals
from mekong.shared.db.schema import instance
from mekong.shared.http import keys
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response

routes = web.RouteTableDef()
_SHA256 = re.compile(r"[0-9a-f]{64}")
CHUNK = 1024 * 1024


@routes.put("/api/hub/originals/{sop_uid}")
@requires(Permission.IMAGES_WRITE)
async def receive(request: web.Request) -> web.Response:
    sop_uid, digest = request.match_info["sop_uid"], request.headers.get("X-Mekong-SHA256", "")
    if not _SHA256.fullmatch(digest):
        return error_response(400, "X-Mekong-SHA256 must be the original's SHA-256 (64 hex)")
    node = keys.node(request)
    index, blobs = node.index, node.blobs
    assert index is not None and blobs is not None
    present = await index.reading(lambda conn: conn.execute(
        select(instance.c.id).where(instance.c.sop_uid == sop_uid)).first())  # fmt: skip
    if present is None:
        return error_response(409, f"instance {sop_uid} is not at the hub yet; send it first")
    known = await index.reading(lambda conn: originals.by_sop_uid(conn, sop_uid))
    if known is not None and known.digest == digest:
        return web.json_response({"sop_uid": sop_uid, "digest": digest, "stored": False})
    temp = blobs.tmp / uuid.uuid4().hex
    try:
        size = await _receive(request, temp, digest)
        stored = await asyncio.to_thread(blobs.adopt, temp, digest)
    finally:
        temp.unlink(missing_ok=True)
    await asyncio.to_thread(blobs.sync_dirs, {stored.path})
    original = originals.Original(
        sop_uid, digest, size, request.headers.get("Content-Type", "application/octet-stream"),
        unquote(request.headers.get("X-Mekong-Filename", "")),
        request.headers.get("X-Mekong-Accession", "")[:16],
        request.headers.get("X-Mekong-Device", "")[:64],
    )  # fmt: skip
    await index.transaction(lambda conn: originals.link(conn, original, "site"))
    blobs.release(stored.hold)
    record(request, "import.original.store", object=sop_uid,
           detail={"file": original.filename, "size": size})  # fmt: skip
    return web.json_response({"sop_uid": sop_uid, "digest": digest, "stored": True}, status=201)


async def _receive(request: web.Request, temp: Path, digest: str) -> int:
    sha, size = hashlib.sha256(), 0
    with open(temp, "wb") as out:
        async for chunk in request.content.iter_chunked(CHUNK):
            sha.update(chunk)
            out.write(chunk)
            size += len(chunk)
    if sha.hexdigest() != digest:
        raise web.HTTPBadRequest(text="the body's SHA-256 is not X-Mekong-SHA256: not kept")
    return size
