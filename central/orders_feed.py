"""``GET /api/hub/orders?after=T&limit=N``: the orders of the calling site, for its worklist
(issue 6 item 3). An enrolled edge (role ``site``) gets its own site's; an administrator names
one with ``site=``. Answer: ``{"orders": [snapshot + "changed"], "next": T'}`` — ask again
from ``next``; ``more`` says a full page was returned."""

from __future__ import annotations

import time

from aiohttp import web

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response
from mekong.shared.ris.feed import SETTLE_SECONDS, site_changes

routes = web.RouteTableDef()
MAX_LIMIT = 500


@routes.get("/api/hub/orders")
@requires(Permission.ORDERS_PULL)
async def site_orders(request: web.Request) -> web.Response:
    """Orders of one site changed after ``after`` (seconds since 1970), oldest first."""
    principal = principal_of(request)
    site = principal.name if principal and principal.kind == "site" else request.query.get("site")
    if not site:
        return error_response(400, "name the site: site=NAME (an enrolled edge gets its own)")
    try:
        after = float(request.query.get("after", "0"))
        limit = max(1, min(int(request.query.get("limit", "200")), MAX_LIMIT))
    except ValueError:
        return error_response(400, "after must be a number of seconds and limit a whole number")
    before = time.time() - SETTLE_SECONDS
    index = keys.node(request).index
    assert index is not None
    orders, cursor = await index.reading(
        lambda conn: site_changes(conn, site, after, before, limit)
    )
    if orders:
        patients = sorted({o["patient"]["id"] for o in orders})
        record(request, "orders.pull", object=f"site:{site}",
               detail={"orders": len(orders), "patients": patients[:50]})  # fmt: skip
    return web.json_response({"orders": orders, "next": cursor, "more": len(orders) == limit})
