"""Known DICOM AEs (PACS-3, PACS-18.3): ``/api/admin/aes`` — list, add or change, remove, and
a C-ECHO from this node to one of them."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from mekong.shared.audit.trail import FAILURE, SUCCESS
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.db.index import Index, RemoteAE
from mekong.shared.dimse.echo import echo
from mekong.shared.dimse.known_aes import remote_ae
from mekong.shared.http import keys
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response, json_object

routes = web.RouteTableDef()
log = logging.getLogger(__name__)


def ae_json(ae: RemoteAE) -> dict[str, object]:
    return {"title": ae.title, "host": ae.host, "port": ae.port, "allow": sorted(ae.allow),
            "fuzzy_find": ae.fuzzy_find, "description": ae.description,
            "ascii_worklist": ae.ascii_worklist}  # fmt: skip


@routes.get("/api/admin/aes")
@requires(Permission.SYSTEM_READ)
async def list_aes(request: web.Request) -> web.Response:
    return web.json_response([ae_json(ae) for ae in await _index(request).remote_aes()])


@routes.put("/api/admin/aes/{title}")
@requires(Permission.SYSTEM_CONFIGURE)
async def save_ae(request: web.Request) -> web.Response:
    """Add or replace an AE: ``{"host", "port", "allow": [...], "fuzzy_find", "description",
    "ascii_worklist"}``; without ``ascii_worklist`` the stored setting is kept."""
    title = request.match_info["title"]
    body = await json_object(request)
    ascii_worklist = body.get("ascii_worklist")
    if ascii_worklist is None:  # a client that does not know the setting leaves it alone
        stored = {ae.title: ae for ae in await _index(request).remote_aes()}.get(title)
        ascii_worklist = stored is not None and stored.ascii_worklist
    try:
        ae = remote_ae(
            title, str(body.get("host", "")), body.get("port"),  # type: ignore[arg-type]
            body.get("allow", "echo,store,find,get,move"), bool(body.get("fuzzy_find")),
            str(body.get("description", "")), bool(ascii_worklist),
        )  # fmt: skip
    except ValueError as exc:
        return error_response(400, str(exc))
    await _index(request).save_remote_ae(ae)
    record(request, "config.change", object=f"ae:{title}", detail=ae_json(ae))
    return web.json_response(ae_json(ae))


@routes.delete("/api/admin/aes/{title}")
@requires(Permission.SYSTEM_CONFIGURE)
async def remove_ae(request: web.Request) -> web.Response:
    title = request.match_info["title"]
    if not await _index(request).remove_remote_ae(title):
        return error_response(404, f"no AE named {title!r}")
    record(request, "config.change", object=f"ae:{title}", detail={"removed": True})
    return web.json_response({"title": title, "removed": True})


@routes.post("/api/admin/aes/{title}/echo")
@requires(Permission.SYSTEM_CONFIGURE)
async def echo_ae(request: web.Request) -> web.Response:
    """C-ECHO from this node's AE title to a known AE (10 s timeout)."""
    title = request.match_info["title"]
    known = {ae.title: ae for ae in await _index(request).remote_aes()}
    if title not in known:
        return error_response(404, f"no AE named {title!r}")
    ae, calling = known[title], keys.node(request).config.dicom.ae_title
    result = await asyncio.to_thread(echo, calling, ae.title, ae.host, ae.port)
    log.info("C-ECHO to %s at %s:%s: %s", ae.title, ae.host, ae.port, result.error or "ok")
    record(request, "aes.echo", object=title, outcome=SUCCESS if result.ok else FAILURE,
           detail={"host": ae.host, "port": ae.port, **result.as_json()})  # fmt: skip
    return web.json_response(result.as_json())


def _index(request: web.Request) -> Index:
    index = keys.node(request).index
    assert index is not None
    return index
