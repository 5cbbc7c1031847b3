"""Operator API of the configuration bundles on an edge (PACS-13).

GET  /api/downlink/config-bundle            version in force, kept versions, last error
POST /api/downlink/config-bundle/rollback   apply the kept bundle before the one in force
"""

from __future__ import annotations

from aiohttp import web

from mekong.edge.downlink.bundles import BundlePuller
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.bundles import BundleError
from mekong.shared.http.access import principal_of
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response

routes = web.RouteTableDef()
PULLER_KEY: web.AppKey[BundlePuller] = web.AppKey("bundle_puller", BundlePuller)
OFF = "configuration bundles are off on this node (set uplink.url and uplink.bundle_key)"


@routes.get("/api/downlink/config-bundle")
@requires(Permission.SYSTEM_READ)
async def bundle_state(request: web.Request) -> web.Response:
    puller = request.app.get(PULLER_KEY)
    if puller is None:
        return error_response(404, OFF)
    return web.json_response(await puller.health())


@routes.post("/api/downlink/config-bundle/rollback")
@requires(Permission.SYSTEM_CONFIGURE)
async def rollback(request: web.Request) -> web.Response:
    """Go back to the previous kept bundle; 409 when there is none."""
    puller = request.app.get(PULLER_KEY)
    if puller is None:
        return error_response(404, OFF)
    principal = principal_of(request)
    try:
        version = await puller.rollback(principal.name if principal else "anonymous")
    except BundleError as error:
        return error_response(409, str(error))
    record(request, "config.change", object=f"bundle:{version}", detail={"rollback": True})
    return web.json_response({"version": version})
