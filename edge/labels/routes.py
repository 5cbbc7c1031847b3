"""Order labels over HTTP (RIS-3.3, FEAT-5.3).

GET /api/orders/{accession}/label.png   the 50 × 30 mm label, 600 × 360 px at 304.8 dpi
GET /api/orders/{accession}/label.pdf   the same as a one-page PDF (label printers)

``orders.read``; the first label of an order issues its key (stored, never changed). Each is
audited as a read of the patient's data (``order.label``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from mekong.edge.labels import render
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.http import keys
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response
from mekong.shared.http.orders import domain_error
from mekong.shared.ris import labels
from mekong.shared.ris.errors import DomainError
from mekong.shared.ris.labels import LabelData

routes = web.RouteTableDef()


@routes.get("/api/orders/{accession}/label.png")
@requires(Permission.ORDERS_READ)
async def label_png(request: web.Request) -> web.Response:
    """The order's label as PNG: QR code of its key, accession, name, birth year, service."""
    return await _label(request, render.png, "image/png", "png")


@routes.get("/api/orders/{accession}/label.pdf")
@requires(Permission.ORDERS_READ)
async def label_pdf(request: web.Request) -> web.Response:
    """The order's label as a 50 × 30 mm PDF page, for a label printer."""
    return await _label(request, render.pdf, "application/pdf", "pdf")


async def _label(
    request: web.Request, paint: Callable[[LabelData], bytes], media: str, ext: str
) -> web.Response:
    accession = request.match_info["accession"]
    index = keys.node(request).index
    assert index is not None
    try:
        data = await index.transaction(lambda conn: labels.label_data(conn, accession))
    except DomainError as exc:
        return domain_error(exc)
    try:
        body = await asyncio.to_thread(paint, data)
    except render.FontMissing as exc:
        return error_response(500, str(exc))
    record(request, "order.label", object=accession, patient_id=data.patient_id,
           detail={"format": ext, "key": data.key})  # fmt: skip
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in accession)
    return web.Response(body=body, content_type=media, headers={
        "Content-Disposition": f'inline; filename="label-{name}.{ext}"',
        "Cache-Control": "no-store",
    })  # fmt: skip
