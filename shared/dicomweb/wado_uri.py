"""WADO-URI (PS3.18 §9): ``GET /dicom-web/wado?requestType=WADO&studyUID&seriesUID&objectUID``
(also at ``/wado``) for older HIS integrations: the DICOM file or a rendered JPEG/PNG."""

from __future__ import annotations

import asyncio

from aiohttp import web

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.dicom.render import RenderOptions
from mekong.shared.dicomweb.params import checked_uid
from mekong.shared.dicomweb.rendered import render_image
from mekong.shared.dicomweb.retrieve import transcoded
from mekong.shared.dicomweb.state import state
from mekong.shared.http.auditing import record

routes = web.RouteTableDef()
_CONTENT_TYPES = ("application/dicom", "image/jpeg", "image/png")


@routes.get("/wado")
@routes.get("/dicom-web/wado")
@requires(Permission.IMAGES_READ)
async def wado(request: web.Request) -> web.Response:
    query = request.query
    if query.get("requestType") != "WADO":
        raise web.HTTPBadRequest(text="requestType=WADO is required")
    study, series, sop = (
        checked_uid(query.get(name, ""), name) for name in ("studyUID", "seriesUID", "objectUID")
    )
    item = await state(request).instance(study, series, sop)
    record(request, "images.retrieve", object=study, patient_id=item.patient_id,
           detail={"path": request.path, "instances": 1})  # fmt: skip
    content_type = query.get("contentType", "image/jpeg").split(",")[0].strip()
    if content_type not in _CONTENT_TYPES:
        raise web.HTTPNotAcceptable(
            text=f"contentType {content_type}: choose one of {', '.join(_CONTENT_TYPES)}"
        )
    if content_type == "application/dicom":
        syntax = query.get("transferSyntax", item.ref.transfer_syntax)
        if syntax == item.ref.transfer_syntax:
            body = await asyncio.to_thread(item.path.read_bytes)
        else:
            body = await asyncio.to_thread(transcoded, item, checked_uid(syntax, "transferSyntax"))
        return web.Response(body=body, content_type="application/dicom")
    options = _options(request, content_type)
    frame = int(_number(query, "frameNumber", int) or 1) - 1
    body = await asyncio.to_thread(render_image, item, max(frame, 0), options)
    return web.Response(body=body, content_type=content_type)


def _options(request: web.Request, content_type: str) -> RenderOptions:
    query = request.query
    rows, columns = _number(query, "rows", int), _number(query, "columns", int)
    viewport = (int(columns or rows), int(rows or columns)) if rows or columns else None
    center, width = _number(query, "windowCenter", float), _number(query, "windowWidth", float)
    window = (center, width) if center is not None and width else None
    quality = int(_number(query, "imageQuality", int) or 90)
    return RenderOptions(content_type, viewport, window, min(max(quality, 1), 100))


def _number(query, name: str, kind: type) -> float | None:  # type: ignore[no-untyped-def]
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return kind(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}={raw} is not a number") from None
