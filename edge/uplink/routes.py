"""Operator API of the uplink (PACS-19; the mercure lesson: every queue can be looked at).

``GET /api/uplink/queue?state=queued|sending|sent|dead&limit=N`` (system.read) lists outbox
rows with attempts and the last error; ``POST /api/uplink/dead/{id}/resend``
(system.configure) queues a dead-lettered row again with its attempts reset.
"""

from __future__ import annotations

from aiohttp import web

from mekong.edge.uplink import outbox
from mekong.edge.uplink.sender import UplinkSender
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.db.schema_uplink import STATES
from mekong.shared.http.auditing import record

routes = web.RouteTableDef()
SENDER_KEY: web.AppKey[UplinkSender] = web.AppKey("uplink_sender", UplinkSender)


@routes.get("/api/uplink/queue")
@requires(Permission.SYSTEM_READ)
async def uplink_queue(request: web.Request) -> web.Response:
    """Outbox rows of the uplink, optionally of one state, with counts per state."""
    sender = request.app[SENDER_KEY]
    state = request.query.get("state") or None
    if state is not None and state not in STATES:
        raise web.HTTPBadRequest(text=f"state must be one of {', '.join(STATES)}")
    limit = _limit(request.query.get("limit", "500"))
    destination = sender.config.destination
    rows = await sender.index.reading(lambda c: outbox.listing(c, destination, state, limit))
    summary = await sender.index.reading(lambda c: outbox.summary(c, destination))
    return web.json_response({"destination": destination, **summary, "items": rows})


@routes.post("/api/uplink/dead/{id}/resend")
@requires(Permission.SYSTEM_CONFIGURE)
async def uplink_resend(request: web.Request) -> web.Response:
    """Queue a dead-lettered instance again (attempts reset)."""
    sender = request.app[SENDER_KEY]
    try:
        row_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text="id must be an integer") from None
    if not await sender.index.transaction(lambda c: outbox.resend(c, row_id)):
        raise web.HTTPNotFound(text=f"no dead-lettered uplink row {row_id}")
    record(request, "uplink.resend", object=str(row_id))
    sender.wake()
    return web.json_response({"id": row_id, "state": "queued"})


def _limit(text: str) -> int:
    try:
        limit = int(text)
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be an integer") from None
    if not 1 <= limit <= 10000:
        raise web.HTTPBadRequest(text="limit must be 1..10000")
    return limit
