"""``POST /api/hub/audit``: an enrolled edge's sealed audit events, kept in the hub's trail
(issue 6 item 2; SEC-7, GEN-4). ``{"events": [...]}`` in the edge's id order, at most 1000;
answers ``{"stored", "last"}`` — ``last`` is the newest edge id the hub holds, where the edge
goes on from. Only a site (its client certificate) sends its own trail."""

from __future__ import annotations

import asyncio

from aiohttp import web

from mekong.shared.audit.sites import append_from_site
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of
from mekong.shared.http.errors import error_response, json_object

routes = web.RouteTableDef()
MAX_EVENTS = 1000


@routes.post("/api/hub/audit")
@requires(Permission.AUDIT_PUSH)
async def receive(request: web.Request) -> web.Response:
    principal = principal_of(request)
    if principal is None or principal.kind != "site":
        return error_response(403, "only an enrolled edge sends its audit trail here")
    body = await json_object(request)
    events = body.get("events")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return error_response(400, 'send {"events": [...]}: the edge’s sealed audit events')
    if len(events) > MAX_EVENTS:
        return error_response(413, f"at most {MAX_EVENTS} events per request")
    audit = keys.node(request).audit
    assert audit is not None
    try:
        stored, last = await asyncio.to_thread(
            append_from_site, audit.db_path, principal.name, events
        )
    except ValueError as error:
        return error_response(400, str(error))
    return web.json_response({"stored": stored, "last": last})
