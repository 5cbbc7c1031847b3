"""``POST /api/hub/order-status``: an enrolled edge reports what happened to one of its site's
orders (issue 6 item 2) — ``{"accession", "status"}`` with ARRIVED, IN_PROGRESS, COMPLETED or
DISCONTINUED. The hub moves its own copy through the status machine with the same workflow
as a local change, so the HIS hears it (outbound HL7). A report the hub's copy is already past
answers 200 ``kept``; one the status machine forbids 409; an order of another site 404."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import Connection

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response, json_object
from mekong.shared.http.orders import domain_error
from mekong.shared.ris import feed, orders, workflow
from mekong.shared.ris.errors import DomainError, NotFound
from mekong.shared.ris.model import OrderKey
from mekong.shared.ris.status import Status
from mekong.shared.ris.upstream import REPORTED

routes = web.RouteTableDef()
RANK = {Status.SCHEDULED: 0, Status.ARRIVED: 1, Status.IN_PROGRESS: 2, Status.COMPLETED: 3,
        Status.DISCONTINUED: 3, Status.CANCELLED: 3}  # fmt: skip


@routes.post("/api/hub/order-status")
@requires(Permission.ORDERS_REPORT)
async def order_status(request: web.Request) -> web.Response:
    body = await json_object(request)
    accession, status = str(body.get("accession", "")), str(body.get("status", ""))
    if not accession or status not in {s.value for s in REPORTED}:
        return error_response(400, "send {accession, status} with status one of "
                                   f"{', '.join(sorted(s.value for s in REPORTED))}")  # fmt: skip
    principal = principal_of(request)
    site = principal.name if principal and principal.kind == "site" else None
    index = keys.node(request).index
    assert index is not None
    try:
        result = await index.transaction(lambda conn: _apply(conn, accession, Status(status), site))
    except DomainError as error:
        return domain_error(error)
    record(request, "order.status", object=accession, detail={"status": status, "result": result})
    return web.json_response({"accession": accession, "result": result})


def _apply(conn: Connection, accession: str, status: Status, site: str | None) -> str:
    if site is not None and not feed.of_site(conn, accession, site):
        raise NotFound(f"no order {accession} of site {site}", "accession")
    current = Status(orders.find_order(conn, OrderKey(accession=accession)).status)
    if RANK[current] >= RANK[status]:
        return f"kept ({current.value} here)"
    changes: list[str] = []
    workflow.record_order_status(conn, OrderKey(accession=accession), status, changes)
    return "applied"
