"""The HL7 message log over HTTP (PACS-16.5): search every inbound message and its outcome.

    GET /api/hl7/messages?control_id=&type=&outcome=&since=&until=&text=&limit=
    GET /api/hl7/messages/{id}      one message with its raw text and the ACK sent

``since`` / ``until``: ISO 8601 date or date-time (node local time unless it has an offset) or
POSIX seconds. Permission ``system.read`` (admin, auditor): the raw messages carry patient data.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.hl7 import msglog
from mekong.shared.http import keys
from mekong.shared.http.errors import error_response

routes = web.RouteTableDef()
OUTCOMES = ("AA", "AE", "AR")
MAX_LIMIT = 1000


def parse_time(value: str, name: str) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ValueError(f"{name} must be an ISO date/date-time or POSIX seconds") from None


@routes.get("/api/hl7/messages")
@requires(Permission.SYSTEM_READ)
async def search(request: web.Request) -> web.Response:
    """Search the HL7 message log (PACS-16.5): control_id, type, outcome, since, until, text."""
    query = request.query
    outcome = query.get("outcome", "").upper()
    if outcome and outcome not in OUTCOMES:
        return error_response(400, f"outcome must be one of {', '.join(OUTCOMES)}")
    try:
        since = parse_time(query.get("since", ""), "since")
        until = parse_time(query.get("until", ""), "until")
        limit = int(query.get("limit", "100"))
    except ValueError as exc:
        message = str(exc) if "since" in str(exc) or "until" in str(exc) else "limit: a number"
        return error_response(400, message)
    index = keys.node(request).index
    assert index is not None
    found = await index.reading(lambda conn: msglog.search(
        conn, control_id=query.get("control_id", ""), message_type=query.get("type", ""),
        outcome=outcome, since=since, until=until, text=query.get("text", ""),
        limit=max(1, min(limit, MAX_LIMIT)),
    ))  # fmt: skip
    return web.json_response({"messages": found, "count": len(found)})


@routes.get("/api/hl7/messages/{id}")
@requires(Permission.SYSTEM_READ)
async def get(request: web.Request) -> web.Response:
    """One logged HL7 message with its raw text and the ACK sent."""
    try:
        message_id = int(request.match_info["id"])
    except ValueError:
        return error_response(400, "the message id is a number")
    index = keys.node(request).index
    assert index is not None
    entry = await index.reading(lambda conn: msglog.get(conn, message_id))
    if entry is None:
        return error_response(404, f"no HL7 message #{message_id}")
    return web.json_response(entry)
