"""The edge's ``discovery`` component (issue 6 item 5): advertises ``<AE title>`` as
``_dicom._tcp`` (TXT: aet, mode, version, site, console port) and the console as
``_http._tcp`` on the LAN, and says goodbye when the node stops."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from mekong.shared import discovery

if TYPE_CHECKING:
    from mekong.shared.node import Node


class Advertiser:
    name = "discovery"

    def __init__(self, node: Node) -> None:
        self.node = node
        self.state = "stopped"
        self.services: list[ServiceInfo] = []
        self._zeroconf: AsyncZeroconf | None = None

    async def start(self) -> None:
        config = self.node.config
        addresses = discovery.interfaces(config)
        self._zeroconf = AsyncZeroconf(interfaces=addresses, ip_version=discovery.IP_VERSION)
        self.services = _services(self.node, discovery.packed(addresses))
        for info in self.services:
            await self._zeroconf.async_register_service(info, allow_name_change=True)
        self.state = "running"

    async def stop(self) -> None:
        if self._zeroconf is not None:
            await self._zeroconf.async_unregister_all_services()
            await self._zeroconf.async_close()
        self.state = "stopped"

    async def health(self) -> dict[str, Any]:
        return {"state": self.state, "advertised": [info.name for info in self.services]}


def _services(node: Node, addresses: list[bytes]) -> list[ServiceInfo]:
    config = node.config
    host = socket.gethostname().split(".")[0] or "mekong"
    title = config.dicom.ae_title
    txt = {"aet": title, "mode": config.mode, "version": node.version,
           "http_port": str(config.http.port), "site": _site(node)}  # fmt: skip
    server = f"{host}.local."
    return [
        ServiceInfo(discovery.DICOM, f"{title} on {host}.{discovery.DICOM}", port=config.dicom.port,
                    properties=txt, addresses=addresses, server=server),
        ServiceInfo(discovery.HTTP, f"Mekong {title} on {host}.{discovery.HTTP}",
                    port=config.http.port, properties={"path": "/", "aet": title},
                    addresses=addresses, server=server),
    ]  # fmt: skip


def _site(node: Node) -> str:
    from mekong.edge.hub.enroll import load

    enrollment = load(node.config.data_dir / "hub")
    return enrollment.site if enrollment else ""
