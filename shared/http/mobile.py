"""The light viewer for phones (MOB-1): ``/m`` — a static page over QIDO-RS and /rendered.

OHIF's layout is poor on small screens; this page lists studies, scrolls a series as JPEGs
from ``/rendered`` with swipe and window presets, and has a low-bandwidth mode (lossy
previews first). ``/m?StudyInstanceUID=…`` opens one study directly.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from mekong.shared.auth.roles import public

routes = web.RouteTableDef()
STATIC = Path(__file__).parent / "static"
_FILES = {"mobile.js": "text/javascript", "mobile.css": "text/css"}


@routes.get("/m")
@public
async def page(request: web.Request) -> web.FileResponse:
    return _file("mobile.html", "text/html")


@routes.get("/m/{name}")
@public
async def asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in _FILES:
        raise web.HTTPNotFound(text=f"no such file: /m/{name}")
    return _file(name, _FILES[name])


def _file(name: str, content_type: str) -> web.FileResponse:
    return web.FileResponse(
        STATIC / name,
        headers={"Content-Type": f"{content_type}; charset=utf-8", "Cache-Control": "no-cache"},
    )
