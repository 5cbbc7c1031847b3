"""Operator API of reclamation on an edge (issue 6 item 4).

POST /api/reclaim/run                 one pass now (system.configure): the studies freed
POST /api/reclaim/restore/{study}     fetch a freed study back from the hub now (images.read),
                                      e.g. before sending it on with C-MOVE
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from mekong.edge.reclaim.fetch import FetchBack, FetchFailed
from mekong.edge.reclaim.reclaimer import Reclaimer
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.db.schema import instance, series, study
from mekong.shared.http import keys
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response

routes = web.RouteTableDef()
RECLAIMER_KEY: web.AppKey[Reclaimer] = web.AppKey("reclaimer", Reclaimer)
FETCH_KEY: web.AppKey[FetchBack] = web.AppKey("fetch_back", FetchBack)
OFF = "reclamation is off on this node (reclaim.enabled, with an enrolled hub)"


@routes.post("/api/reclaim/run")
@requires(Permission.SYSTEM_CONFIGURE)
async def run(request: web.Request) -> web.Response:
    reclaimer = request.app.get(RECLAIMER_KEY)
    if reclaimer is None:
        return error_response(404, OFF)
    freed = await reclaimer.run_once()
    record(request, "config.change", object="reclaim", detail={"freed": freed})
    return web.json_response({"freed": freed})


@routes.post("/api/reclaim/restore/{study}")
@requires(Permission.IMAGES_READ)
async def restore(request: web.Request) -> web.Response:
    fetch = request.app.get(FETCH_KEY)
    if fetch is None:
        return error_response(404, OFF)
    study_uid = request.match_info["study"]
    index = keys.node(request).index
    assert index is not None
    query = (select(instance.c.digest).select_from(instance.join(series).join(study))
             .where(study.c.study_uid == study_uid))  # fmt: skip
    digests = await index.reading(lambda conn: [r.digest for r in conn.execute(query)])
    if not digests:
        return error_response(404, f"no study {study_uid!r} on this node")
    try:
        await fetch.restore(digests)
    except FetchFailed as error:
        return error_response(503, f"study {study_uid} is kept at the hub; fetching it back "
                                   f"failed: {error}")  # fmt: skip
    record(request, "images.restore", object=study_uid, detail={"instances": len(digests)})
    return web.json_response({"study": study_uid, "instances": len(digests)})


def viewer_fetch_back(fetch: FetchBack):  # type: ignore[no-untyped-def]
    """The DICOMweb hook: freed blobs fetched back before they are read; 503 JSON if the hub
    cannot give them (the viewer shows the message)."""

    async def restore(digests: list[str]) -> None:
        try:
            await fetch.restore(digests)
        except FetchFailed as error:
            raise web.HTTPServiceUnavailable(
                text=f"these images are kept at the hub and could not be fetched back: {error}"
            ) from None

    return restore
