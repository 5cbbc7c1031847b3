"""The audit trail for auditors (GEN-3, PACS-16): search, verify, DICOM export."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from aiohttp import web
from sqlalchemy import select

from mekong.shared.audit import export, trail
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.db.schema_auth import audit_event
from mekong.shared.http import keys
from mekong.shared.http.auditing import record

routes = web.RouteTableDef()
_FILTERS = ("actor", "action", "outcome", "patient_id", "object", "source")


@routes.get("/api/audit")
@requires(Permission.AUDIT_READ)
async def search(request: web.Request) -> web.Response:
    events = await find_events(request)
    record(request, "audit.read", detail={"returned": len(events)})
    return web.json_response(events)


@routes.get("/api/audit/verify")
@requires(Permission.AUDIT_READ)
async def verify(request: web.Request) -> web.Response:
    await keys.audit(request).flush()
    result = await asyncio.to_thread(trail.verify, keys.node(request).config.index_path)
    return web.json_response(
        {"ok": result.ok, "checked": result.checked, "unsealed": result.unsealed,
         "message": result.message}, status=200 if result.ok else 409,
    )  # fmt: skip


@routes.get("/api/audit/export")
@requires(Permission.AUDIT_READ)
async def export_dicom(request: web.Request) -> web.Response:
    """The events as DICOM PS3.15 A.5 audit messages (one XML document per event, wrapped)."""
    events = await find_events(request)
    record(request, "audit.export", detail={"returned": len(events)})
    source = keys.node(request).config.dicom.ae_title
    return web.Response(text=export.audit_messages(events, source), content_type="application/xml")


async def find_events(request: web.Request, query: Mapping[str, str] | None = None) -> list[dict]:
    """Events matching the filters (by default the request's query parameters), newest first."""
    await keys.audit(request).flush()
    query = request.query if query is None else query
    statement = select(audit_event).order_by(audit_event.c.id.desc())
    for name in _FILTERS:
        if query.get(name):
            statement = statement.where(getattr(audit_event.c, name) == query[name])
    for name, op in (("since", "__ge__"), ("until", "__le__")):
        if query.get(name):
            statement = statement.where(getattr(audit_event.c.at, op)(_time(query[name], name)))
    statement = statement.limit(_limit(query.get("limit", "200")))
    async with keys.node(request).index.engine.connect() as conn:  # type: ignore[union-attr]
        rows = (await conn.execute(statement)).mappings().all()
    return [dict(row) for row in rows]


def _time(text: str, name: str) -> float:
    try:
        return (
            float(text)
            if text.replace(".", "").isdigit()
            else time.mktime(
                time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S" if "T" in text else "%Y-%m-%d")
            )
        )
    except ValueError:
        raise web.HTTPBadRequest(
            text=f"{name}: use seconds since 1970 or YYYY-MM-DD[THH:MM:SS]"
        ) from None


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10000:
        raise web.HTTPBadRequest(text="limit must be a whole number from 1 to 10000")
    return int(text)
