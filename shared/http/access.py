"""Who is calling and may they (SEC-5, SEC-6): the access middleware of every HTTP route.

Credentials: the session cookie (browsers; state changes need the ``X-CSRF-Token`` header of
the session) or ``Authorization: Bearer <API token>`` (integrations). On a hub, a connection to
the mutual-TLS listener is its client certificate's site (``CLIENT_CERT``, set by
:mod:`mekong.central`; a revoked or unknown certificate is a ``revoked`` principal, refused).
A trusted LAN may be given a role for requests without credentials (``auth.anonymous_*``).
A handler declares its permission with ``@requires`` or ``@public``; one that declares neither
is refused. A request marked ``X-Background: 1`` (a console page refreshing itself), or to a
path of ``BACKGROUND_PATHS`` (the console's event stream), does not keep its session alive.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from mekong.shared.auth import sessions, tokens
from mekong.shared.auth.accounts import account_by_id
from mekong.shared.auth.roles import PUBLIC, Permission, allowed, permission_of
from mekong.shared.http.errors import Handler, error_response
from mekong.shared.http.keys import node as node_of

log = logging.getLogger(__name__)
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
BACKGROUND = "X-Background"  # "1": automatic refresh, not user activity (idle timeout)
BACKGROUND_PATHS = frozenset({"/console/events"})  # EventSource cannot send headers


@dataclass(frozen=True)
class Principal:
    name: str
    kind: str  # user | token | anonymous | site (client certificate) | revoked (refused cert)
    role: str
    user_id: int | None = None
    session: sessions.Session | None = None
    must_change: bool = False


PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal", Principal)
# the principal of a TLS connection's client certificate, or None when it is not one to use
CertResolver = Callable[[web.Request, ssl.SSLObject], Awaitable[Principal | None]]
CLIENT_CERT: web.AppKey[CertResolver] = web.AppKey("client_cert_resolver")


def principal_of(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL)  # type: ignore[arg-type]


@web.middleware
async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info
    if route.http_exception is not None:  # 404 / 405: nothing to protect
        return await handler(request)
    permission = permission_of(route.handler)
    if permission is None:
        log.error("route %s %s declares no permission: refused", request.method, request.path)
        return error_response(500, "this route declares no permission; refused for safety")
    principal = await authenticate(request)
    request[PRINCIPAL] = principal
    if permission == PUBLIC:
        return await handler(request)
    refusal = refuse(request, principal, Permission(permission))
    if refusal is not None and _wants_page(request) and refusal.status in (401, 403):
        return _to_sign_in(request, principal)
    return refusal or await handler(request)


def _wants_page(request: web.Request) -> bool:
    """A browser navigating to a console page (not an API or DICOMweb call)."""
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("Accept", "")
        and (not request.path.startswith(("/api/", "/dicom-web/", "/wado")))
    )


def _to_sign_in(request: web.Request, principal: Principal | None) -> web.StreamResponse:
    """Pages send people to sign in, or to finish signing in, instead of a JSON error."""
    if principal is None:
        raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
    if principal.must_change:
        raise web.HTTPFound("/login/next")
    return web.Response(status=403, content_type="text/html", text=_FORBIDDEN)


_FORBIDDEN = (
    "<!doctype html><meta charset=utf-8><title>403</title>"
    "<p>Bạn không có quyền xem trang này. / You may not open this page.</p><a href=/>↩</a>"
)


def refuse(
    request: web.Request, principal: Principal | None, permission: Permission
) -> web.Response | None:
    if principal is None:
        return error_response(
            401, "sign in first: POST /api/auth/login, or send Authorization: Bearer <token>"
        )
    if principal.kind == "revoked":
        return error_response(403, f"the certificate of site '{principal.name}' is revoked "
                                   "or no longer the site's: enroll again")  # fmt: skip
    if principal.must_change and permission != Permission.SELF:
        return error_response(
            403,
            "finish signing in first: change your password, or enrol the second factor "
            "(GET /api/auth/me says which)",
        )
    if not allowed(principal.role, permission):
        return error_response(403, f"role '{principal.role}' may not do '{permission}'")
    session = principal.session
    if session and request.method not in _SAFE_METHODS and not _csrf_ok(request, session.csrf):
        return error_response(403, "missing or wrong X-CSRF-Token header (CSRF protection)")
    return None


def _csrf_ok(request: web.Request, expected: str) -> bool:
    return secrets.compare_digest(request.headers.get("X-CSRF-Token", ""), expected)


async def authenticate(request: web.Request) -> Principal | None:
    """The caller; image reads reuse a credential's answer for ``_IMAGE_READ_SECONDS``.

    A viewer sends hundreds of frame requests per series: looking the session (or token) up in
    the database for each one halved the frame rate. For GETs under ``/dicom-web/`` only, a
    credential checked in the last two seconds is trusted again; everything else — the API,
    pages, every state change — is checked against the database each time. So a revoked token,
    a closed or idle session may still read images for at most two more seconds.
    """
    key = _image_read_key(request)
    if key is not None:
        cached = _image_reads.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
    principal = await _authenticate(request)
    if (
        key is not None
        and principal is not None
        and principal.kind != "anonymous"
        and (not principal.must_change)
    ):
        if len(_image_reads) > 10_000:
            _image_reads.clear()
        _image_reads[key] = (principal, time.monotonic() + _IMAGE_READ_SECONDS)
    return principal


_IMAGE_READ_SECONDS = 2.0
_image_reads: dict[str, tuple[Principal, float]] = {}


def _image_read_key(request: web.Request) -> str | None:
    if request.method != "GET" or not request.path.startswith("/dicom-web/"):
        return None
    credential = request.headers.get("Authorization", "") or request.cookies.get(
        sessions.COOKIE, ""
    )
    return hashlib.sha256(credential.encode()).hexdigest() if credential else None


async def _authenticate(request: web.Request) -> Principal | None:
    by_certificate = await _certificate_principal(request)
    if by_certificate is not None:
        return by_certificate
    node = node_of(request)
    engine = node.index.engine  # type: ignore[union-attr]
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        found = await tokens.token_principal(engine, header[7:].strip())
        return Principal(found[0], "token", found[1]) if found else None
    cookie = request.cookies.get(sessions.COOKIE)
    if cookie:
        idle = node.config.auth.idle_minutes * 60
        touch = request.headers.get(BACKGROUND) != "1" and request.path not in BACKGROUND_PATHS
        session = await sessions.find_session(engine, cookie, idle, touch)
        account = await account_by_id(engine, session.user_id) if session else None
        if session and account and not account.disabled and not account.account_expired:
            pending = bool(account.pending_step(node.config.auth))
            return Principal(account.username, "user", account.role, account.id, session, pending)
    return _anonymous(request)


async def _certificate_principal(request: web.Request) -> Principal | None:
    resolver = request.app.get(CLIENT_CERT)
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if resolver is None or ssl_object is None:
        return None
    return await resolver(request, ssl_object)


def _anonymous(request: web.Request) -> Principal | None:
    auth = node_of(request).config.auth
    if not auth.anonymous_role or not request.remote:
        return None
    try:
        address = ipaddress.ip_address(request.remote)
    except ValueError:
        return None
    if any(address in ipaddress.ip_network(n, strict=False) for n in auth.anonymous_networks):
        return Principal(f"lan:{request.remote}", "anonymous", auth.anonymous_role)
    return None
