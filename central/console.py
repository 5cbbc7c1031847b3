"""Hub console: the sites page (issue 6 item 6) — every site with last-seen, lag (oldest
unsent), queue depth, disk and version, refreshed every 5 s; a site's page with its studies;
adding a site or a new enrollment token shows the token once, with its QR code for the edge's
installer. Revoking goes through ``POST /api/hub/sites/{name}/revoke`` from the page.
Templates (and so every UI string) are in ``shared/console/templates/sites*.html``."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from mekong.central import registry
from mekong.central.discovery import LISTENER_KEY
from mekong.central.routes import create_site, issue_token
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.console import qr
from mekong.shared.console.render import page
from mekong.shared.http import keys

routes = web.RouteTableDef()


@routes.get("/admin/sites")
@requires(Permission.SYSTEM_READ)
async def sites_page(request: web.Request) -> web.Response:
    return page(request, "sites.html", await _sites(request))


@routes.get("/admin/sites/table")
@requires(Permission.SYSTEM_READ)
async def sites_table(request: web.Request) -> web.Response:
    return page(request, "sites_table.html", await _sites(request))


@routes.get("/admin/sites/{name}")
@requires(Permission.SYSTEM_READ)
async def site_page(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    index = keys.node(request).index
    assert index is not None
    site = await index.reading(lambda conn: registry.site(conn, name))
    if site is None:
        raise web.HTTPNotFound(text=f"no site named {name!r}")
    studies = await index.reading(lambda conn: registry.site_studies(conn, name))
    return page(request, "site.html", {"site": site, "studies": studies, "now": time.time()})


@routes.post("/admin/sites")
@requires(Permission.SYSTEM_CONFIGURE)
async def add_site(request: web.Request) -> web.Response:
    """htmx: register a site; answers with its enrollment token and QR code (shown once)."""
    name = str((await request.post()).get("name", "")).strip()
    try:
        token = await create_site(request, name)
    except web.HTTPBadRequest as exc:
        return page(request, "site_token.html", {"name": name, "error": exc.text, "token": ""})
    return _token_fragment(request, name, token)


@routes.post("/admin/sites/{name}/enrollment")
@requires(Permission.SYSTEM_CONFIGURE)
async def new_enrollment(request: web.Request) -> web.Response:
    """htmx: a new enrollment token for a site, with its QR code (shown once)."""
    name = request.match_info["name"]
    try:
        token = await issue_token(request, name)
    except web.HTTPBadRequest as exc:
        return page(request, "site_token.html", {"name": name, "error": exc.text, "token": ""})
    return _token_fragment(request, name, token)


def _token_fragment(request: web.Request, name: str, token: str) -> web.Response:
    command = f"mekong serve --mode edge --hub-url {request.url.origin()} --enroll-token {token}"
    context = {"name": name, "token": token, "error": "", "command": command,
               "qr": qr.svg(token)}  # fmt: skip
    response = page(request, "site_token.html", context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["HX-Trigger"] = "refresh"
    return response


async def _sites(request: web.Request) -> dict[str, Any]:
    index = keys.node(request).index
    assert index is not None
    listener = request.app.get(LISTENER_KEY)
    heard = sorted(listener.found.values(), key=lambda n: n["name"]) if listener else []
    return {"sites": await index.reading(registry.sites), "now": time.time(),
            "discovered": heard, "discovery_on": listener is not None}  # fmt: skip
