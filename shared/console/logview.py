"""Administration: the node's recent log lines, filtered by level and text, and the log-level
switch (RIS-2.4; the switch is ``PUT /api/admin/log-level``, shown to who may use it)."""

from __future__ import annotations

from aiohttp import web

from mekong.shared import logs
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.console.render import page
from mekong.shared.http.admin import recent_lines

routes = web.RouteTableDef()


@routes.get("/admin/logs")
@requires(Permission.SYSTEM_READ)
async def logs_page(request: web.Request) -> web.Response:
    return page(request, "logs.html", _context(request))


@routes.get("/admin/logs/lines")
@requires(Permission.SYSTEM_READ)
async def log_lines(request: web.Request) -> web.Response:
    return page(request, "log_lines.html", _context(request))


def _context(request: web.Request) -> dict[str, object]:
    try:
        lines, error = recent_lines(request.query), ""
    except ValueError as exc:
        lines, error = [], str(exc)
    return {"lines": lines, "error": error, "levels": logs.LEVELS,
            "level": logs.current_level(), "filter_level": request.query.get("level", ""),
            "text": request.query.get("q", "")}  # fmt: skip
