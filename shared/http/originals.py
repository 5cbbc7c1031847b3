"""Non-DICOM originals kept beside the DICOM made from them (PACS-5.2–5.4), on any node:
``GET /api/import/originals/{sop_uid}`` gives the file back byte for byte (at an edge that
imported it, and at the hub it was delivered to)."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.db import originals
from mekong.shared.http import keys
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response

routes = web.RouteTableDef()


@routes.get("/api/import/originals/{sop_uid}")
@requires(Permission.IMAGES_READ)
async def original(request: web.Request) -> web.StreamResponse:
    """The original file (byte for byte) an imported object was made from."""
    sop_uid = request.match_info["sop_uid"]
    node = keys.node(request)
    assert node.index is not None and node.blobs is not None
    found = await node.index.reading(lambda conn: originals.by_sop_uid(conn, sop_uid))
    if found is None:
        return error_response(404, f"no original is kept for instance {sop_uid}")
    record(request, "import.original.read", object=sop_uid,
           detail={"file": found.filename, "accession": found.accession},
           dedupe=(sop_uid,))  # fmt: skip
    name = quote(found.filename.replace('"', ""), safe="")
    return web.FileResponse(node.blobs.path_for(found.digest), headers={
        "Content-Type": found.media_type,
        "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
    })  # fmt: skip
