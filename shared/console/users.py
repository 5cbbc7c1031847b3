"""Administration: user accounts and API tokens (SEC-1, SEC-6, QOS-1.3). The lists are drawn
here; every change goes through ``/api/users`` and ``/api/tokens`` from the page."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from mekong.shared.auth import accounts, tokens
from mekong.shared.auth.roles import ASSIGNABLE_ROLES, Permission, requires
from mekong.shared.console.render import page
from mekong.shared.http import keys

routes = web.RouteTableDef()
ROLES = [role.value for role in ASSIGNABLE_ROLES]


@routes.get("/admin/users")
@requires(Permission.USERS_MANAGE)
async def users_page(request: web.Request) -> web.Response:
    context = {**await _users(request), **await _tokens(request)}
    return page(request, "users.html", context)


@routes.get("/admin/users/table")
@requires(Permission.USERS_MANAGE)
async def users_table(request: web.Request) -> web.Response:
    return page(request, "users_table.html", await _users(request))


@routes.get("/admin/tokens/table")
@requires(Permission.USERS_MANAGE)
async def tokens_table(request: web.Request) -> web.Response:
    return page(request, "tokens_table.html", await _tokens(request))


async def _users(request: web.Request) -> dict[str, object]:
    return {"accounts": await accounts.list_accounts(_engine(request)), "roles": ROLES}


async def _tokens(request: web.Request) -> dict[str, object]:
    return {"tokens": await tokens.list_tokens(_engine(request)), "roles": ROLES}


def _engine(request: web.Request) -> AsyncEngine:
    index = keys.node(request).index
    assert index is not None
    return index.engine
