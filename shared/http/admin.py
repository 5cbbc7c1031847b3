"""Administration routes. RIS-2.4: read and change the log level of the running node."""

from __future__ import annotations

from aiohttp import web

from mekong.shared import logs
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response

routes = web.RouteTableDef()


@routes.get("/api/admin/log-level")
@requires(Permission.SYSTEM_READ)
async def get_log_level(request: web.Request) -> web.Response:
    return web.json_response({"level": logs.current_level()})


@routes.put("/api/admin/log-level")
@requires(Permission.SYSTEM_CONFIGURE)
async def put_log_level(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        level = logs.set_level(str(body["level"]))
    except (ValueError, KeyError, TypeError):
        return error_response(400, 'send {"level": "DEBUG|INFO|WARNING|ERROR|CRITICAL"} as JSON')
    record(request, "config.change", object="log_level", detail={"level": level})
    return web.json_response({"level": level})
