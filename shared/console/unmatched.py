"""The unmatched list in the console (RIS-3.8, FLOW-1/2, FEAT-5.6): stored studies no order
claimed, with the reason and the suggested order, and the fix: link to an order by its
accession number (the form posts to ``POST /api/unmatched/{study}/link``, shown only to roles
with ``orders.write``; the API checks again). The waiting list's alert (FEAT-5.6, drawn with
its table and refreshed by the reconciler's nudge) links here."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import Connection

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.console.i18n import N_
from mekong.shared.console.render import page
from mekong.shared.http import keys
from mekong.shared.http.auditing import record
from mekong.shared.ris import links
from mekong.shared.ris.matching import AMBIGUOUS, NO_KEY, ORDER_CANCELLED, UNKNOWN_KEY

routes = web.RouteTableDef()
PAGE_SIZE = 100
REASONS = {  # reason code → what the page says (the domain's detail follows it)
    NO_KEY: N_("No accession number or order key in the images"),
    UNKNOWN_KEY: N_("No order has this accession number"),
    ORDER_CANCELLED: N_("The order was cancelled"),
    AMBIGUOUS: N_("Several orders could match"),
}


async def _unmatched(request: web.Request, offset: int) -> tuple[list[dict[str, Any]], int]:
    index = keys.node(request).index
    assert index is not None

    def work(conn: Connection) -> tuple[list[dict[str, Any]], int]:
        return links.list_unmatched(conn, PAGE_SIZE, offset), links.count_unmatched(conn)

    return await index.reading(work)


def _offset(request: web.Request) -> int:
    text = request.query.get("page", "0")
    return PAGE_SIZE * (int(text) if text.isdigit() and int(text) < 10_000 else 0)


async def _context(request: web.Request) -> dict[str, Any]:
    offset = _offset(request)
    rows, total = await _unmatched(request, offset)
    record(request, "unmatched.read", detail={"via": "console", "studies": len(rows)},
           dedupe=(offset,))  # fmt: skip
    return {"rows": rows, "total": total, "reasons": REASONS, "page_number": offset // PAGE_SIZE,
            "more": offset + len(rows) < total}  # fmt: skip


@routes.get("/unmatched")
@requires(Permission.ORDERS_READ)
async def unmatched_page(request: web.Request) -> web.Response:
    """Studies no order claimed, newest first, with the reason and the fix (RIS-3.8)."""
    return page(request, "unmatched.html", await _context(request))


@routes.get("/unmatched/table")
@requires(Permission.ORDERS_READ)
async def unmatched_table(request: web.Request) -> web.Response:
    return page(request, "unmatched_table.html", await _context(request))
