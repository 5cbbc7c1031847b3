"""User and API-token administration (SEC-1, SEC-6): ``/api/users``, ``/api/tokens``."""

from __future__ import annotations

from aiohttp import web

from mekong.shared.auth import accounts, sessions, tokens
from mekong.shared.auth.accounts import AccountError
from mekong.shared.auth.roles import Permission, requires
from mekong.shared.http import keys
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response, json_object

routes = web.RouteTableDef()


def _engine(request: web.Request):  # type: ignore[no-untyped-def]
    return keys.node(request).index.engine  # type: ignore[union-attr]


@routes.get("/api/users")
@requires(Permission.USERS_MANAGE)
async def list_users(request: web.Request) -> web.Response:
    users = await accounts.list_accounts(_engine(request))
    return web.json_response([
        {"username": u.username, "role": u.role, "display_name": u.display_name,
         "disabled": u.disabled, "expires_at": u.expires_at, "must_change": u.must_change,
         "totp_enrolled": bool(u.totp_secret), "directory": u.directory}
        for u in users
    ])  # fmt: skip


@routes.post("/api/users")
@requires(Permission.USERS_MANAGE)
async def create_user(request: web.Request) -> web.Response:
    body = await json_object(request)
    username, role = str(body.get("username", "")), str(body.get("role", ""))
    try:
        password = await accounts.create_user(
            _engine(request), username, role, str(body.get("display_name", ""))
        )
    except (AccountError, ValueError) as exc:
        return error_response(400, str(exc))
    record(request, "user.create", object=username, detail={"role": role})
    return web.json_response({"username": username, "role": role, "one_time_password": password},
                             status=201)  # fmt: skip


@routes.put("/api/users/{username}")
@requires(Permission.USERS_MANAGE)
async def update_user(request: web.Request) -> web.Response:
    username = request.match_info["username"]
    body = await json_object(request)
    changes = {k: body[k] for k in ("role", "display_name", "disabled", "expires_at") if k in body}
    try:
        await accounts.set_account(_engine(request), username, **changes)
    except (AccountError, ValueError) as exc:
        return error_response(404 if "no user" in str(exc) else 400, str(exc))
    if changes.get("disabled"):
        account = await accounts.get_account(_engine(request), username)
        await sessions.close_user_sessions(_engine(request), account.id)  # type: ignore[union-attr]
    record(request, "user.change", object=username, detail=changes)
    return web.json_response({"username": username, **changes})


@routes.post("/api/users/{username}/reset-password")
@requires(Permission.USERS_MANAGE)
async def reset_password(request: web.Request) -> web.Response:
    username = request.match_info["username"]
    try:
        password = await accounts.reset_password(_engine(request), username)
    except AccountError as exc:
        return error_response(404, str(exc))
    record(request, "user.reset_password", object=username)
    return web.json_response({"username": username, "one_time_password": password})


@routes.get("/api/tokens")
@requires(Permission.USERS_MANAGE)
async def list_tokens(request: web.Request) -> web.Response:
    return web.json_response([
        {"name": t.name, "role": t.role, "created_at": t.created_at, "revoked_at": t.revoked_at}
        for t in await tokens.list_tokens(_engine(request))
    ])  # fmt: skip


@routes.post("/api/tokens")
@requires(Permission.USERS_MANAGE)
async def create_token(request: web.Request) -> web.Response:
    body = await json_object(request)
    name, role = str(body.get("name", "")), str(body.get("role", ""))
    try:
        token = await tokens.create_token(_engine(request), name, role)
    except (AccountError, ValueError) as exc:
        return error_response(400, str(exc))
    record(request, "token.create", object=name, detail={"role": role})
    return web.json_response({"name": name, "role": role, "token": token}, status=201)


@routes.delete("/api/tokens/{name}")
@requires(Permission.USERS_MANAGE)
async def revoke_token(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not await tokens.revoke_token(_engine(request), name):
        return error_response(404, f"no active token '{name}'")
    record(request, "token.revoke", object=name)
    return web.json_response({"name": name, "revoked": True})
