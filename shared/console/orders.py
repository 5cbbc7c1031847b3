"""The waiting list (RIS-3.5, RIS-4.1, RIS-4.2), live: the page listens to ``/console/events``
(Server-Sent Events, a nudge when an order is created or changed) and re-reads its table with
htmx. The order detail shows the patient's imaging history with viewer links (RIS-4.5);
actions (arrived, room, cancel with a reason) go to the ``/api/orders`` JSON routes; on a node
that prints labels (the edge) the order detail has "Print label" (the PDF) and the PNG."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from aiohttp import web
from markupsafe import Markup
from sqlalchemy import Connection

from mekong.shared.auth.roles import Permission, allowed, requires
from mekong.shared.console import i18n
from mekong.shared.console.listcache import cache_of
from mekong.shared.console.render import fragment, html, page
from mekong.shared.db.attributes import Level
from mekong.shared.db.query import Query
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of
from mekong.shared.http.auditing import record
from mekong.shared.ris import catalogue, events, links, orders
from mekong.shared.ris.errors import DomainError
from mekong.shared.ris.waiting import WAITING, Filters, waiting_orders

routes = web.RouteTableDef()
HISTORY = ["StudyInstanceUID", "StudyDate", "AccessionNumber", "ModalitiesInStudy",
           "StudyDescription", "NumberOfStudyRelatedInstances"]  # fmt: skip
HEARTBEAT = 15.0  # seconds between keep-alive comments
STREAM_LIFE = 300.0  # the browser reconnects, through the access check (idle timeout) again
LABEL_ROUTE = "/api/orders/{accession}/label.pdf"


def _filters(request: web.Request) -> Filters:
    values = {name: request.query.get(name, "").strip()[:64] for name in Filters.names()}
    values["date"] = values["date"].replace("-", "")
    values["modality"] = values["modality"].upper()
    return Filters(**values)


async def _waiting(request: web.Request, chosen: Filters) -> tuple[list[dict], list[dict], Any]:
    """(orders, rooms, the unmatched alert), shared by every user asking with the same
    filters (:mod:`listcache`)."""
    index = keys.node(request).index
    assert index is not None

    def work(conn: Connection) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
        return waiting_orders(conn, chosen), catalogue.entries(conn, "room"), _unmatched(conn)

    return await cache_of(request).get(("waiting", chosen), lambda: index.reading(work))


async def _table(request: web.Request, chosen: Filters) -> str:
    """The drawn table: the same for every user with the same filters, language and right to
    change orders, so drawn once for them all until an order changes."""
    principal = principal_of(request)
    writer = bool(principal) and allowed(principal.role, Permission.ORDERS_WRITE)  # type: ignore[union-attr]
    key = ("waiting table", chosen, i18n.language_of(request), writer)

    async def draw() -> str:
        rows, rooms, unmatched = await _waiting(request, chosen)
        return fragment(request, "orders_table.html", {"rows": rows, "rooms": rooms,
                                                       "unmatched": unmatched})  # fmt: skip

    return await cache_of(request).get(key, draw)


def _unmatched(conn: Connection) -> dict[str, Any]:
    """The alert over the waiting list (FEAT-5.6): how many stored studies no order claimed,
    and why the newest was not (the reconciler nudges the live list when one is listed)."""
    total = links.count_unmatched(conn)
    latest = links.list_unmatched(conn, 1) if total else []
    return {"total": total, "latest": latest[0] if latest else None}


@routes.get("/orders")
@requires(Permission.ORDERS_READ)
async def waiting_page(request: web.Request) -> web.Response:
    chosen = _filters(request)
    table = Markup(await _table(request, chosen))  # noqa: S704 - drawn by the autoescaping env
    _, rooms, _ = await _waiting(request, chosen)
    shown = {n: request.query.get(n, "").strip()[:64] for n in Filters.names()}
    return page(request, "orders.html", {"table": table, "rooms": rooms, "chosen": shown,
                                         "statuses": WAITING})  # fmt: skip


@routes.get("/orders/table")
@requires(Permission.ORDERS_READ)
async def waiting_table(request: web.Request) -> web.Response:
    return html(request, await _table(request, _filters(request)))


@routes.get("/orders/{accession}")
@requires(Permission.ORDERS_READ)
async def order_page(request: web.Request) -> web.Response:
    accession = request.match_info["accession"]
    index = keys.node(request).index
    assert index is not None

    def work(conn: Connection) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return orders.get_order(conn, accession), catalogue.entries(conn, "room")

    try:
        order, rooms = await index.reading(work)
    except DomainError:
        raise web.HTTPNotFound() from None
    history = await _history(request, order["patient"]["id"])
    record(request, "order.read", object=accession, patient_id=order["patient"]["id"],
           detail={"via": "console", "studies": len(history)})  # fmt: skip
    uids = ",".join(row["StudyInstanceUID"] for row in history)
    context = {"order": order, "rooms": rooms, "history": history, "compare": uids,
               "labels": _has_labels(request)}  # fmt: skip
    return page(request, "order.html", context)


def _has_labels(request: web.Request) -> bool:
    """Whether this node prints order labels (the edge adds ``…/label.pdf``, RIS-3.3)."""
    return any(resource.canonical == LABEL_ROUTE for resource in request.app.router.resources())


async def _history(request: web.Request, patient_id: str) -> list[dict[str, Any]]:
    """The patient's studies in the index, newest first (RIS-4.5)."""
    index = keys.node(request).index
    assert index is not None
    if not patient_id:
        return []
    query = Query(Level.STUDY, {"PatientID": patient_id}, limit=50, newest_first=True)
    return await index.find(query, HISTORY)


@routes.get("/console/events")
@requires(Permission.ORDERS_READ)
async def order_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: ``changed`` with the accession whenever an order changes. Marked a
    background request (``access.BACKGROUND_PATHS``): it does not keep the session alive."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Content-Type-Options": "nosniff"})  # fmt: skip
    await response.prepare(request)
    await response.write(b"retry: 3000\n\n")
    if "text/event-stream" not in request.headers.get("Accept", ""):
        return response  # not an EventSource: one comment and the end
    with events.subscription() as queue:
        deadline = asyncio.get_running_loop().time() + STREAM_LIFE
        while asyncio.get_running_loop().time() < deadline:
            event = await _next_event(queue)
            if not event:
                break
            await response.write(event)
    return response


async def _next_event(queue: asyncio.Queue[str]) -> bytes:
    try:
        accession = await asyncio.wait_for(queue.get(), HEARTBEAT)
    except TimeoutError:
        return b": " + dt.datetime.now().isoformat().encode() + b"\n\n"
    if not accession:
        return b""  # the node stops
    return f"event: changed\ndata: {accession}\n\n".encode()
