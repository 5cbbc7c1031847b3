"""The unmatched list (RIS-3.8, FLOW-1/2): stored studies no order claimed, and fixing them.

    GET  /api/unmatched?limit=&offset=        studies with the reason (and a suggested order)
    POST /api/unmatched/{study}/link          {"accession": "..."}: link to that order; the
                                              stored instances are then coerced to it
    POST /api/studies/{study}/move            {"accession": "...", "reason": "..."}: undo a
                                              wrong mapping: the linked study goes to that
                                              order and is coerced again (FEAT-5.5)

``orders.read`` to list, ``orders.write`` to link or move; both are audited (``study.link``,
``study.move``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import Connection

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response, json_object
from mekong.shared.http.orders import domain_error
from mekong.shared.ris import links, reconcile
from mekong.shared.ris.errors import DomainError, Invalid

routes = web.RouteTableDef()
MAX_LIMIT = 1000


@routes.get("/api/unmatched")
@requires(Permission.ORDERS_READ)
async def search(request: web.Request) -> web.Response:
    """Stored studies not linked to an order, newest first, with the reason."""
    try:
        limit = max(1, min(int(request.query.get("limit", "100")), MAX_LIMIT))
        offset = max(0, int(request.query.get("offset", "0")))
    except ValueError:
        return error_response(400, "limit and offset must be whole numbers")
    index = keys.node(request).index
    assert index is not None

    def work(conn: Connection) -> dict[str, Any]:
        found = links.list_unmatched(conn, limit, offset)
        return {"studies": found, "count": len(found), "total": links.count_unmatched(conn)}

    return web.json_response(await index.reading(work))


@routes.post("/api/unmatched/{study}/link")
@requires(Permission.ORDERS_WRITE)
async def link(request: web.Request) -> web.Response:
    """Link an unmatched study to the order with this accession; its images are coerced."""
    study_uid = request.match_info["study"]
    index = keys.node(request).index
    assert index is not None
    principal = principal_of(request)
    user = principal.name if principal else "anonymous"
    changes: list[str] = []
    try:
        body = await json_object(request)
        accession = body.get("accession")
        if not isinstance(accession, str) or not accession.strip():
            raise Invalid("accession (the order's accession number) is required", "accession")
        order = await index.transaction(
            lambda conn: reconcile.link_by_hand(conn, study_uid, accession.strip(), user, changes)
        )
    except DomainError as exc:
        return domain_error(exc)
    record(request, "study.link", object=study_uid, patient_id=order["patient"]["id"],
           detail={"accession": order["accession"], "changes": changes})  # fmt: skip
    return web.json_response({"study_uid": study_uid, "order": order, "coercion": "queued"})


@routes.post("/api/studies/{study}/move")
@requires(Permission.ORDERS_WRITE)
async def move(request: web.Request) -> web.Response:
    """Move a linked study to another order (a wrong QR label or accession); its images are
    coerced again to the new order, the change audited."""
    study_uid = request.match_info["study"]
    index = keys.node(request).index
    assert index is not None
    principal = principal_of(request)
    user = principal.name if principal else "anonymous"
    changes: list[str] = []
    try:
        body = await json_object(request)
        accession, reason = body.get("accession"), body.get("reason", "")
        if not isinstance(accession, str) or not accession.strip():
            raise Invalid("accession (the right order's accession number) is required",
                          "accession")  # fmt: skip
        if not isinstance(reason, str):
            raise Invalid("reason must be a string", "reason")
        old, order = await index.transaction(
            lambda conn: reconcile.move_study(conn, study_uid, accession.strip(), user, changes)
        )
    except DomainError as exc:
        return domain_error(exc)
    record(request, "study.move", object=study_uid, patient_id=order["patient"]["id"],
           detail={"from": old, "accession": order["accession"], "reason": reason[:500],
                   "changes": changes})  # fmt: skip
    return web.json_response({"study_uid": study_uid, "from": old, "order": order,
                              "coercion": "queued"})  # fmt: skip
