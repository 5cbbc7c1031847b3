"""Signing in through the console (SEC-2..6, QOS-1): the sign-in page, the page that finishes a
first sign-in (forced password change, TOTP enrolment for admins) and the home page.

The pages call the JSON API (``/api/auth/*``) from the browser; nothing here checks a password.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web
from markupsafe import Markup

from mekong.shared.auth import accounts, totp
from mekong.shared.auth.roles import Permission, public, requires
from mekong.shared.console import menu, qr
from mekong.shared.console.assets import local_path
from mekong.shared.console.render import page
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of

routes = web.RouteTableDef()


@routes.get("/login")
@public
async def login(request: web.Request) -> web.Response:
    target = local_path(request.query.get("next"))
    principal = principal_of(request)
    if principal is not None and principal.kind == "user":  # signed in already
        raise web.HTTPFound(_finish_url(target) if principal.must_change else target)
    return page(request, "login.html", {"next": target})


@routes.get("/login/next")
@requires(Permission.SELF)
async def finish(request: web.Request) -> web.Response:
    """What the user must still do: change the password, then (admins) enrol a TOTP."""
    target = local_path(request.query.get("next"))
    principal = principal_of(request)
    assert principal is not None
    node = keys.node(request)
    account = await accounts.get_account(node.index.engine, principal.name)  # type: ignore[union-attr]
    step = account.pending_step(node.config.auth) if account else ""
    if not step:
        raise web.HTTPFound(target)
    context: dict[str, object] = {"step": step, "next": target}
    if step == "enrol_totp":
        secret = totp.new_secret()
        uri = totp.provisioning_uri(secret, principal.name)
        context.update(secret=secret, qr=Markup(qr.svg(uri)))  # SVG made by qrcode
    return page(request, "login_next.html", context)


@routes.get("/")
@requires(Permission.SELF)
async def home(request: web.Request) -> web.Response:
    """The first page the role may use; a page saying so when there is none yet."""
    principal = principal_of(request)
    assert principal is not None
    if principal.must_change:
        raise web.HTTPFound("/login/next")
    first = menu.first_page(principal.role)
    if first:
        raise web.HTTPFound(first)
    return page(request, "home.html")


def _finish_url(target: str) -> str:
    return f"/login/next?next={quote(target, safe='')}"
