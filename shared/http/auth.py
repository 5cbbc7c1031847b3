"""Sign-in for people and scripts (SEC-2..6, QOS-1): ``/api/auth/*``.

``POST /api/auth/login`` takes ``{"username", "password"}`` (plus ``totp`` for admins with a
second factor, and ``challenge_id``/``challenge_answer`` after 5 failures) and sets the session
cookie: a new random id each time, ``HttpOnly``, ``SameSite=Lax``, ``Secure`` under HTTPS.
The answer carries the CSRF token to send as ``X-CSRF-Token`` on every state change.
Credentials are accepted only in a POST body.

With ``[ldap] enabled`` (PACS-4.6), user names that are not local accounts (or are directory
accounts) are checked by an LDAP bind (:mod:`mekong.shared.auth.directory`); local accounts
never touch the directory, so a directory outage leaves them working.
"""

from __future__ import annotations

import base64
import time
from collections import defaultdict, deque

from aiohttp import web

from mekong.shared.audit.trail import FAILURE, SUCCESS
from mekong.shared.auth import accounts, directory, sessions, totp
from mekong.shared.auth.accounts import CHALLENGE_AFTER, Account, AccountError
from mekong.shared.auth.challenge import Challenges
from mekong.shared.auth.passwords import WeakPassword
from mekong.shared.auth.roles import Permission, Role, public, requires
from mekong.shared.config import AuthConfig
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of
from mekong.shared.http.auditing import record
from mekong.shared.http.errors import error_response, json_object

routes = web.RouteTableDef()
CHALLENGES = Challenges()
_ATTEMPTS: dict[str, deque[float]] = defaultdict(deque)
_RATE_WINDOW, _RATE_LIMIT = 60.0, 20  # failed sign-ins per address per minute


@routes.post("/api/auth/login")
@public
async def login(request: web.Request) -> web.Response:
    if _recent_failures(request.remote or "") >= _RATE_LIMIT:
        return error_response(429, "too many failed sign-ins from this address; wait a minute")
    body = await json_object(request)
    username, password = str(body.get("username", "")), str(body.get("password", ""))
    node = keys.node(request)
    engine = node.index.engine  # type: ignore[union-attr]
    known = await accounts.get_account(engine, username)
    if known and known.failures >= CHALLENGE_AFTER and not _challenge_solved(body):
        _audit(request, username, "login", FAILURE, {"reason": "challenge required"})
        return web.json_response(
            {"error": "too many failed sign-ins: solve the challenge (GET /api/auth/challenge)",
             "status": 401, "challenge_required": True}, status=401,
        )  # fmt: skip
    if node.config.ldap.enabled and (known is None or known.directory):
        return await _directory_login(request, body, username, password)
    account = await accounts.check_password(engine, username, password)
    if account is None:
        return _wrong_password(request, username, {"reason": "wrong user name or password"})
    return await _finish_login(request, body, account)


async def _directory_login(
    request: web.Request, body: dict, username: str, password: str
) -> web.Response:
    """Sign-in through the hospital directory (PACS-4.6): a successful bind makes or updates
    the local ``directory`` account with the mapped role; refusals count like wrong passwords."""
    node = keys.node(request)
    engine = node.index.engine  # type: ignore[union-attr]
    result = await directory.authenticate(node.config.ldap, username, password)
    detail = {"via": "ldap", "reason": result.reason}
    if result.outcome == directory.UNAVAILABLE:
        _audit(request, username, "login", FAILURE, detail)
        return error_response(503, "the hospital directory (LDAP) cannot be reached; try again "
                                   "later — local accounts can still sign in")  # fmt: skip
    if result.outcome == directory.NOT_ALLOWED:  # e.g. a name outside SEC-1, no mapped group
        _audit(request, username, "login", FAILURE, detail)
        return error_response(403, f"the directory account cannot use Mekong: {result.reason}")
    if result.outcome != directory.OK:
        await accounts.count_failure(engine, username)
        return _wrong_password(request, username, detail)
    try:
        account = await accounts.directory_account(
            engine, result.username, result.role, result.display_name
        )
    except AccountError as exc:  # a local account of that name appeared meanwhile
        return _wrong_password(request, username, {**detail, "reason": str(exc)})
    return await _finish_login(request, body, account, via="ldap")


def _wrong_password(request: web.Request, username: str, detail: dict) -> web.Response:
    _ATTEMPTS[request.remote or ""].append(time.monotonic())
    _audit(request, username, "login", FAILURE, detail)
    return error_response(401, "wrong user name or password")


async def _finish_login(
    request: web.Request, body: dict, account: Account, via: str = ""
) -> web.Response:
    refusal = _account_refusal(account, body, keys.node(request).config.auth.admin_totp)
    if refusal:
        detail = {"reason": refusal["error"], **({"via": via} if via else {})}
        _audit(request, account.username, "login", FAILURE, detail)
        return web.json_response(refusal, status=refusal["status"])
    return await _signed_in(request, account, via)


def _account_refusal(account: Account, body: dict, admin_totp: bool) -> dict | None:
    if account.disabled:
        return {"error": "this account is disabled; ask an administrator", "status": 403}
    if account.account_expired:
        return {"error": "this account has expired; ask an administrator", "status": 403}
    second_factor = admin_totp and account.role == Role.ADMIN and account.totp_secret
    if second_factor and not totp.verify(account.totp_secret, str(body.get("totp", ""))):
        return {"error": "enter the 6-digit code from your authenticator app",
                    "status": 401, "totp_required": True}  # fmt: skip
    return None


async def _signed_in(request: web.Request, account: Account, via: str = "") -> web.Response:
    node = keys.node(request)
    engine = node.index.engine  # type: ignore[union-attr]
    cookie, csrf = await sessions.open_session(engine, account.id, request.remote or "")
    _audit(request, account.username, "login", detail={"via": via} if via else None)
    response = web.json_response({**_me(account, node.config.auth), "csrf": csrf})
    response.set_cookie(
        sessions.COOKIE, cookie, httponly=True, samesite="Lax", secure=request.secure, path="/"
    )
    return response


def _me(account: Account, auth: AuthConfig) -> dict:
    """Who is signed in, and what they must do before anything else (``next``)."""
    return {
        "username": account.username,
        "role": account.role,
        "display_name": account.display_name,
        "must_change": bool(account.pending_step(auth)),
        "next": account.pending_step(auth),  # "" | "change_password" | "enrol_totp"
        "totp_enrolled": bool(account.totp_secret),
        "directory": account.directory,
    }


@routes.post("/api/auth/logout")
@requires(Permission.SELF)
async def logout(request: web.Request) -> web.Response:
    cookie = request.cookies.get(sessions.COOKIE)
    if cookie:
        await sessions.close_session(keys.node(request).index.engine, cookie)  # type: ignore[union-attr]
    principal = principal_of(request)
    _audit(request, principal.name if principal else "?", "logout")
    response = web.json_response({"signed_out": True})
    response.del_cookie(sessions.COOKIE, path="/")
    return response


@routes.get("/api/auth/me")
@requires(Permission.SELF)
async def me(request: web.Request) -> web.Response:
    principal = principal_of(request)
    assert principal is not None
    if principal.kind != "user":
        return web.json_response({"username": principal.name, "role": principal.role,
                                  "kind": principal.kind})  # fmt: skip
    engine = keys.node(request).index.engine  # type: ignore[union-attr]
    account = await accounts.get_account(engine, principal.name)
    assert account is not None
    csrf = principal.session.csrf if principal.session else ""
    return web.json_response({**_me(account, keys.node(request).config.auth), "kind": "user",
                              "csrf": csrf})  # fmt: skip


@routes.post("/api/auth/password")
@requires(Permission.SELF)
async def change_password(request: web.Request) -> web.Response:
    principal = principal_of(request)
    if principal is None or principal.kind != "user":
        return error_response(400, "only signed-in users have a password to change")
    body = await json_object(request)
    engine = keys.node(request).index.engine  # type: ignore[union-attr]
    account = await accounts.get_account(engine, principal.name)
    if account is not None and account.directory:
        return error_response(400, "this password is kept by the hospital directory (LDAP); "
                                   "change it there")  # fmt: skip
    if (
        await accounts.check_password(engine, principal.name, str(body.get("current_password", "")))
        is None
    ):
        _audit(request, principal.name, "password.change", FAILURE, {"reason": "wrong password"})
        return error_response(403, "the current password is wrong")
    try:
        await accounts.change_password(engine, principal.name, str(body.get("new_password", "")))
    except (WeakPassword, AccountError) as exc:
        _audit(request, principal.name, "password.change", FAILURE, {"reason": str(exc)})
        return error_response(400, str(exc))
    _audit(request, principal.name, "password.change")
    return web.json_response({"changed": True})


@routes.get("/api/auth/totp/new")
@requires(Permission.SELF)
async def new_totp(request: web.Request) -> web.Response:
    principal = principal_of(request)
    assert principal is not None
    secret = totp.new_secret()
    return web.json_response(
        {"secret": secret, "uri": totp.provisioning_uri(secret, principal.name)}
    )


@routes.post("/api/auth/totp")
@requires(Permission.SELF)
async def enroll_totp(request: web.Request) -> web.Response:
    """Keep a second factor: ``{"secret", "code"}`` — the code proves the app has the secret."""
    principal = principal_of(request)
    body = await json_object(request)
    secret, code = str(body.get("secret", "")), str(body.get("code", ""))
    if principal is None or principal.kind != "user":
        return error_response(400, "only signed-in users can enrol a second factor")
    try:
        valid = totp.verify(secret, code)
    except ValueError:
        valid = False
    if not valid:
        return error_response(400, "the code does not match the secret; check the phone's clock")
    await accounts.set_account(keys.node(request).index.engine, principal.name, totp_secret=secret)  # type: ignore[union-attr]
    _audit(request, principal.name, "totp.enrol")
    return web.json_response({"enrolled": True})


@routes.get("/api/auth/challenge")
@public
async def challenge(request: web.Request) -> web.Response:
    challenge_id, png = CHALLENGES.issue()
    image = "data:image/png;base64," + base64.b64encode(png).decode()
    return web.json_response({"challenge_id": challenge_id, "image": image})


def _challenge_solved(body: dict) -> bool:
    return CHALLENGES.solve(
        str(body.get("challenge_id", "")), str(body.get("challenge_answer", ""))
    )


def _recent_failures(remote: str) -> int:
    now, failures = time.monotonic(), _ATTEMPTS[remote]
    while failures and failures[0] < now - _RATE_WINDOW:
        failures.popleft()
    return len(failures)


def _audit(
    request: web.Request,
    actor: str,
    action: str,
    outcome: str = SUCCESS,
    detail: dict | None = None,
) -> None:
    record(request, action, outcome=outcome, object=actor, detail=detail, actor=actor)
