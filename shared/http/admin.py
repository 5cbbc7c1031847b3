"""Administration routes. RIS-2.4: read and change the log level of the running node.

Until users and roles exist (issue 7) these routes answer only callers on the loopback
interface, so an operator on the box (or the CLI) can use them and nobody else can.
"""

from __future__ import annotations

from aiohttp import web

from mekong.shared import logs
from mekong.shared.http.errors import error_response

routes = web.RouteTableDef()
_LOOPBACK = ("127.0.0.1", "::1")


def _local_only(request: web.Request) -> web.Response | None:
    if request.remote not in _LOOPBACK:
        return error_response(403, "administration is only allowed from the node itself")
    return None


@routes.get("/api/admin/log-level")
async def get_log_level(request: web.Request) -> web.Response:
    if refused := _local_only(request):
        return refused
    return web.json_response({"level": logs.current_level()})


@routes.put("/api/admin/log-level")
async def put_log_level(request: web.Request) -> web.Response:
    if refused := _local_only(request):
        return refused
    try:
        body = await request.json()
        level = logs.set_level(str(body["level"]))
    except (ValueError, KeyError, TypeError):
        return error_response(400, 'send {"level": "DEBUG|INFO|WARNING|ERROR|CRITICAL"} as JSON')
    return web.json_response({"level": level})
