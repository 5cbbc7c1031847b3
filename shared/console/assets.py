"""The console's static files (its CSS, script and the vendored htmx) and the language switch."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from mekong.shared.auth.roles import public
from mekong.shared.console.i18n import COOKIE, LANGUAGES

routes = web.RouteTableDef()
STATIC = Path(__file__).parent / "static"
_FILES = {
    "console.css": "text/css",
    "console.js": "text/javascript",
    "htmx.min.js": "text/javascript",
    "htmx.LICENSE": "text/plain",
}


@routes.get("/console/static/{name}")
@public
async def asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in _FILES:
        raise web.HTTPNotFound(text=f"no such file: {name}")
    headers = {
        "Content-Type": f"{_FILES[name]}; charset=utf-8",
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    return web.FileResponse(STATIC / name, headers=headers)


@routes.get("/lang")
@public
async def choose_language(request: web.Request) -> web.Response:
    """``/lang?set=en&next=/studies``: remember the language in a cookie and go back."""
    response = web.HTTPFound(local_path(request.query.get("next"), "/login"))
    language = request.query.get("set", "")
    if language in LANGUAGES:
        response.set_cookie(COOKIE, language, max_age=365 * 86400, path="/", samesite="Lax",
                            secure=request.secure)  # fmt: skip
    raise response


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this node (no open redirect), else ``default``."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or any(ord(c) < 32 for c in target):
        return default
    return target
