"""The hub's ``discovery`` component and ``GET /api/hub/discovered`` (issue 6 item 5): the DICOM
nodes heard on the hub's LAN through DNS-SD (``_dicom._tcp``) — Mekong edges (TXT ``mode``,
``site``) and any modality or PACS that advertises itself — with address, port and AE title."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from zeroconf import ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from mekong.shared import discovery
from mekong.shared.auth.roles import Permission, requires

if TYPE_CHECKING:
    from mekong.shared.node import Node

routes = web.RouteTableDef()
LISTENER_KEY = web.AppKey("discovery_listener", object)


class Listener:
    name = "discovery"

    def __init__(self, node: Node) -> None:
        self.node = node
        self.state = "stopped"
        self.found: dict[str, dict[str, Any]] = {}
        self._zeroconf: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        addresses = discovery.interfaces(self.node.config)
        self._zeroconf = AsyncZeroconf(interfaces=addresses, ip_version=discovery.IP_VERSION)
        self._browser = AsyncServiceBrowser(
            self._zeroconf.zeroconf, [discovery.DICOM], handlers=[self._changed]
        )
        self.state = "running"

    async def stop(self) -> None:
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zeroconf is not None:
            await self._zeroconf.async_close()
        self.state = "stopped"

    def _changed(self, zeroconf: Zeroconf, service_type: str, name: str,
                 state_change: ServiceStateChange) -> None:  # fmt: skip
        if state_change is ServiceStateChange.Removed:
            self.found.pop(name, None)
            return
        task = asyncio.ensure_future(self._resolve(zeroconf, service_type, name))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _resolve(self, zeroconf: Zeroconf, service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(zeroconf, 3000):
            return
        txt = {k.decode(): (v or b"").decode(errors="replace") for k, v in info.properties.items()}
        self.found[name] = {
            "name": name.removesuffix(f".{service_type}"),
            "addresses": [socket.inet_ntoa(a) for a in info.addresses if len(a) == 4],
            "port": info.port, "ae_title": txt.get("aet", ""),
            "mekong": txt.get("mode") in ("edge", "hub"), "mode": txt.get("mode", ""),
            "site": txt.get("site", ""), "version": txt.get("version", ""),
            "http_port": txt.get("http_port", ""), "seen_at": time.time(),
        }  # fmt: skip


@routes.get("/api/hub/discovered")
@requires(Permission.SYSTEM_READ)
async def discovered(request: web.Request) -> web.Response:
    """DICOM nodes heard on the LAN (empty when discovery is off on this hub)."""
    listener = request.app.get(LISTENER_KEY)
    found = listener.found.values() if isinstance(listener, Listener) else []
    return web.json_response({"nodes": sorted(found, key=lambda n: n["name"])})
