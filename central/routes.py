"""The hub's site API (issue 6).

``POST /api/hub/enroll`` (public, but needs a valid one-time token; on the ordinary HTTP(S)
listener): ``{"token", "csr"}`` → the edge's client certificate, the CA to pin, the mutual-TLS
URL and the site. ``POST /api/hub/report`` (an enrolled site, over mutual TLS): its health.
``GET /api/hub/sites`` (system.read): every site with last-seen, lag, queue depth, disk,
version. ``POST /api/hub/sites`` ``{"name"}``, ``POST /api/hub/sites/{name}/token`` and
``POST /api/hub/sites/{name}/revoke`` (system.configure): register, new enrollment token, revoke.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from cryptography import x509

from mekong.central import registry
from mekong.central.ca import CsrError, HubCA, check_csr, serial_hex
from mekong.shared.auth.roles import Permission, public, requires
from mekong.shared.config import HubConfig
from mekong.shared.http import keys
from mekong.shared.http.access import principal_of
from mekong.shared.http.auditing import record

routes = web.RouteTableDef()
MAX_CSR = 16 * 1024


@dataclass(frozen=True)
class HubState:
    ca: HubCA
    config: HubConfig


HUB_KEY: web.AppKey[HubState] = web.AppKey("hub", HubState)


@routes.post("/api/hub/enroll")
@public
async def enroll(request: web.Request) -> web.Response:
    """Enroll an edge: a one-time token and a CSR in, its client certificate out."""
    hub = request.app[HUB_KEY]
    body = await _json(request)
    token, csr = body.get("token"), body.get("csr")
    if not isinstance(token, str) or not isinstance(csr, str) or len(csr) > MAX_CSR:
        raise web.HTTPBadRequest(text='send {"token": "…", "csr": "PEM"}')
    try:
        check_csr(csr.encode())
    except CsrError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    days = hub.config.client_cert_days
    serial = x509.random_serial_number()
    not_after = time.time() + days * 86400
    index = keys.node(request).index
    assert index is not None
    found = await index.transaction(
        lambda conn: registry.redeem(conn, token, serial_hex(serial), not_after)
    )
    if found is None:
        record(request, "site.enroll", outcome="failure", actor="unenrolled edge")
        return web.json_response(
            {"error": "enrollment token unknown, already used or expired, or the site is revoked"},
            status=403,
        )
    site_id, name = found
    issued = hub.ca.sign_client(csr.encode(), name, days, serial)
    record(request, "site.enroll", object=name, actor=f"site:{name}",
           detail={"serial": issued.serial})  # fmt: skip
    return web.json_response({
        "site": name, "site_id": site_id, "certificate": issued.pem.decode(),
        "ca": hub.ca.cert_pem.decode(), "mtls_url": _mtls_url(request, hub.config),
    })  # fmt: skip


def _mtls_url(request: web.Request, config: HubConfig) -> str:
    if config.mtls_url:
        return config.mtls_url.rstrip("/")
    host = request.url.host or keys.node(request).config.bind
    host = f"[{host}]" if ":" in host else host
    return f"https://{host}:{config.mtls_port}"


@routes.post("/api/hub/report")
@requires(Permission.SITE_REPORT)
async def report(request: web.Request) -> web.Response:
    """An enrolled edge's health: version, queue depth, oldest unsent age, disk, last error."""
    principal = principal_of(request)
    if principal is None or principal.kind != "site" or principal.user_id is None:
        raise web.HTTPForbidden(text="only an enrolled site reports its health")
    body = await _json(request)
    site_id = principal.user_id
    index = keys.node(request).index
    assert index is not None
    kept = await index.transaction(lambda conn: registry.save_report(conn, site_id, body))
    return web.json_response({"site": principal.name, "report": kept})


@routes.get("/api/hub/sites")
@requires(Permission.SYSTEM_READ)
async def list_sites(request: web.Request) -> web.Response:
    """Every site: state, last seen, lag, queue depth, disk, version, study count."""
    index = keys.node(request).index
    assert index is not None
    return web.json_response({"sites": await index.reading(registry.sites)})


@routes.post("/api/hub/sites")
@requires(Permission.SYSTEM_CONFIGURE)
async def add_site(request: web.Request) -> web.Response:
    """Register a site; the answer holds its enrollment token, shown this once."""
    name = str((await _json(request)).get("name", "")).strip()
    token = await create_site(request, name)
    return web.json_response({"site": name, "token": token}, status=201)


@routes.post("/api/hub/sites/{name}/token")
@requires(Permission.SYSTEM_CONFIGURE)
async def site_token(request: web.Request) -> web.Response:
    """A new one-time enrollment token for a site (a replaced edge, a lost token)."""
    name = request.match_info["name"]
    return web.json_response({"site": name, "token": await issue_token(request, name)})


@routes.post("/api/hub/sites/{name}/revoke")
@requires(Permission.SYSTEM_CONFIGURE)
async def revoke_site(request: web.Request) -> web.Response:
    """Revoke a site: its certificate is refused from the next request on."""
    name = request.match_info["name"]
    index = keys.node(request).index
    assert index is not None
    try:
        changed = await index.transaction(lambda conn: registry.revoke(conn, name))
    except registry.RegistryError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    record(request, "site.revoke", object=name)
    return web.json_response({"site": name, "state": "revoked", "changed": changed})


async def create_site(request: web.Request, name: str) -> str:
    """Register ``name`` and return its first enrollment token (API and console)."""
    hub = request.app[HUB_KEY]
    index = keys.node(request).index
    assert index is not None

    def work(conn: Any) -> str:
        registry.add_site(conn, name)
        return registry.new_token(conn, name, hub.ca.fingerprint, hub.config.token_hours)

    try:
        token = await index.transaction(work)
    except registry.RegistryError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    record(request, "site.add", object=name)
    return token


async def issue_token(request: web.Request, name: str) -> str:
    hub = request.app[HUB_KEY]
    index = keys.node(request).index
    assert index is not None
    try:
        token = await index.transaction(
            lambda conn: registry.new_token(conn, name, hub.ca.fingerprint, hub.config.token_hours)
        )
    except registry.RegistryError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    record(request, "site.token", object=name)
    return token


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json(loads=json.loads)
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return body
