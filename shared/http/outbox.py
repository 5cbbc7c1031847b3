"""The outbound HL7 queue over HTTP (RIS-6.2): what waits, what was sent, the dead letters.

    GET  /api/hl7/outbox?state=&destination=&accession=&limit=   newest first, with counts
    GET  /api/hl7/outbox/{id}                 one message with its text and the ACK received
    POST /api/hl7/outbox/{id}/resend          a DEAD message back in its queue (same MSH-10)

Permission ``system.configure`` (administrators); a resend is audited (``hl7.resend``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import Connection

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.db.outbox_schema import STATES
from mekong.shared.hl7.outbound import outbox
from mekong.shared.http import keys
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response

routes = web.RouteTableDef()
MAX_LIMIT = 1000


@routes.get("/api/hl7/outbox")
@requires(Permission.SYSTEM_CONFIGURE)
async def search(request: web.Request) -> web.Response:
    """Outbound HL7 messages (state PENDING, SENT or DEAD), newest first, with counts."""
    query = request.query
    state = query.get("state", "").upper()
    if state and state not in STATES:
        return error_response(400, f"state must be one of {', '.join(STATES)}")
    try:
        limit = max(1, min(int(query.get("limit", "100")), MAX_LIMIT))
    except ValueError:
        return error_response(400, "limit must be a whole number")
    index = keys.node(request).index
    assert index is not None

    def work(conn: Connection) -> dict[str, Any]:
        found = outbox.search(conn, state, query.get("destination", ""),
                              query.get("accession", ""), limit)  # fmt: skip
        return {"messages": found, "count": len(found), "totals": outbox.counts(conn)}

    return web.json_response(await index.reading(work))


@routes.get("/api/hl7/outbox/{id}")
@requires(Permission.SYSTEM_CONFIGURE)
async def get(request: web.Request) -> web.Response:
    """One outbound message with its text and the ACK received."""
    row_id = _id(request)
    index = keys.node(request).index
    assert index is not None
    found = await index.reading(lambda conn: outbox.get(conn, row_id))
    if found is None:
        return error_response(404, f"no outbound message #{row_id}")
    return web.json_response(found)


@routes.post("/api/hl7/outbox/{id}/resend")
@requires(Permission.SYSTEM_CONFIGURE)
async def resend(request: web.Request) -> web.Response:
    """Put a dead-lettered message back in its destination's queue (same MSH-10)."""
    row_id = _id(request)
    index = keys.node(request).index
    assert index is not None
    try:
        found = await index.transaction(lambda conn: outbox.resend(conn, row_id))
    except outbox.OutboxError as exc:
        return error_response(exc.status, str(exc))
    record(request, "hl7.resend", object=found["control_id"],
           detail={"id": row_id, "destination": found["destination"]})  # fmt: skip
    return web.json_response(found)


def _id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text="the message id is a number") from None
