"""Administration: the known DICOM AEs, with a C-ECHO button each (PACS-18.3). Changes and the
echo go through ``/api/admin/aes`` from the page."""

from __future__ import annotations

from aiohttp import web

from mekong.shared.auth.roles import Permission, requires
from mekong.shared.console.render import page
from mekong.shared.dimse.policy import SERVICES
from mekong.shared.http import keys

routes = web.RouteTableDef()


@routes.get("/admin/aes")
@requires(Permission.SYSTEM_READ)
async def aes_page(request: web.Request) -> web.Response:
    return page(request, "aes.html", await _context(request))


@routes.get("/admin/aes/table")
@requires(Permission.SYSTEM_READ)
async def aes_table(request: web.Request) -> web.Response:
    return page(request, "aes_table.html", await _context(request))


async def _context(request: web.Request) -> dict[str, object]:
    node = keys.node(request)
    assert node.index is not None
    return {"aes": await node.index.remote_aes(), "services": SERVICES,
            "own_title": node.config.dicom.ae_title}  # fmt: skip
