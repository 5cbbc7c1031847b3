"""The hub's mutual-TLS listener (issue 6): enrolled edges reach the hub here, and only here.

A second aiohttp site on the node's HTTP app, on ``[hub] mtls_port``, whose TLS context
*requires* a client certificate signed by the hub CA (``ssl.CERT_REQUIRED``): a client without
one, or with one of another CA, fails the handshake before any HTTP is read. A certificate that
passes is mapped to its site by serial number on every request (``CLIENT_CERT``): a revoked
site, or a certificate replaced by a later enrollment, is refused with 403 from the next
request on, also on a kept-alive connection. No CRL is needed: the hub is the only relying
party and reads its own registry.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from typing import TYPE_CHECKING

from aiohttp import web

from mekong.central import registry
from mekong.central.ca import HubCA, serial_hex
from mekong.shared.auth.roles import Role
from mekong.shared.http import keys
from mekong.shared.http.access import Principal, principal_of

if TYPE_CHECKING:
    from mekong.shared.node import Node

log = logging.getLogger(__name__)
TOUCH_SECONDS = 5.0  # a site's "last seen" is written at most this often


def server_hosts(node: Node) -> list[str]:
    """Names and addresses the listener's certificate is good for."""
    bind = node.config.bind
    hosts = [*node.config.hub.hosts]
    if bind not in ("0.0.0.0", "::"):
        hosts.append(bind)
    return [*hosts, "127.0.0.1", "::1", "localhost", socket.gethostname()]


def mtls_context(ca: HubCA, hosts: list[str]) -> ssl.SSLContext:
    cert, key = ca.write_server(hosts)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca.cert_path)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class MtlsListener:
    """Component: the mutual-TLS site of the node's HTTP app (start after ``http``)."""

    name = "hub-mtls"

    def __init__(self, node: Node, context: ssl.SSLContext) -> None:
        self.node = node
        self.context = context
        self.state = "stopped"
        self._site: web.TCPSite | None = None

    async def start(self) -> None:
        http = self.node.http
        assert http is not None and http._runner is not None, "start HTTP first"
        config = self.node.config
        self._site = web.TCPSite(http._runner, config.bind, config.hub.mtls_port,
                                 shutdown_timeout=10, ssl_context=self.context)  # fmt: skip
        await self._site.start()
        log.info("hub: mutual-TLS listener on %s:%s", config.bind, config.hub.mtls_port)
        self.state = "running"

    async def stop(self) -> None:
        if self._site is not None:
            self.state = "draining"
            await self._site.stop()
        self.state = "stopped"


def certificate_resolver(node: Node, context: ssl.SSLContext):  # type: ignore[no-untyped-def]
    """The ``CLIENT_CERT`` resolver: the site of a connection to the mutual-TLS listener."""

    async def resolve(request: web.Request, ssl_object: ssl.SSLObject) -> Principal | None:
        if ssl_object.context is not context:
            return None  # the ordinary HTTPS listener: users and tokens as usual
        peer = ssl_object.getpeercert() or {}
        serial = _serial(peer)
        index = node.index
        assert index is not None
        found = await index.reading(lambda conn: registry.by_serial(conn, serial))
        if found is None or found.revoked:
            name = found.name if found else _common_name(peer)
            log.warning("hub: refused certificate %s of site %r (%s)", serial, name,
                        "revoked" if found else "not the site's current certificate")  # fmt: skip
            return Principal(name, "revoked", "")
        if time.monotonic() - touched.get(found.id, -60.0) >= TOUCH_SECONDS:
            touched[found.id] = time.monotonic()
            address = request.remote or ""
            await index.transaction(lambda conn: registry.touch(conn, found.id, address))
        # user_id carries the site's id (the STOW listener counts its studies by it)
        return Principal(found.name, "site", Role.SITE.value, user_id=found.id)

    touched: dict[int, float] = {}
    return resolve


def _serial(peer: dict) -> str:
    """The serial as the registry spells it (hex, upper case, no leading zeros)."""
    try:
        return serial_hex(int(str(peer.get("serialNumber", "")), 16))
    except ValueError:
        return ""


def _common_name(peer: dict) -> str:
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return "?"


async def count_site_studies(request: web.Request, studies: dict[str, int]) -> None:
    """STOW listener: instances a site sent, per study (the console's per-site study list)."""
    principal = principal_of(request)
    if principal is None or principal.kind != "site" or principal.user_id is None:
        return
    site_id = principal.user_id
    index = keys.node(request).index
    assert index is not None
    await index.transaction(lambda conn: registry.record_studies(conn, site_id, studies))
