"""Health reports from the edge to its hub (issue 6, QOS-3): every ``[hub] report_interval``
seconds, over mutual TLS, ``POST /api/hub/report`` with the version, the uplink's queue depth,
the age of the oldest unsent instance, the data disk and the last error."""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import TYPE_CHECKING, Any

import aiohttp

from mekong.edge.hub.link import HubLink
from mekong.shared.background import Background

if TYPE_CHECKING:
    from mekong.edge.uplink.sender import UplinkSender
    from mekong.shared.node import Node

log = logging.getLogger(__name__)


class HealthReporter(Background):
    name = "hub-report"

    def __init__(self, node: Node, link: HubLink, sender: UplinkSender) -> None:
        self.node, self.link, self.sender = node, link, sender
        self.last_report_at: float | None = None
        self.last_error = ""
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._session:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            if self.link.ready:
                try:
                    await self.send()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # never die: the hub may be down or refuse us
                    if str(exc) != self.last_error:
                        log.warning("health report to the hub failed: %s", exc)
                    self.last_error = str(exc)
            await asyncio.sleep(self.link.config.report_interval)

    async def report(self) -> dict[str, Any]:
        uplink = await self.sender.health()
        disk = shutil.disk_usage(self.node.config.data_dir)
        return {
            "version": self.node.version,
            "queue_depth": uplink["queue_depth"],
            "oldest_unsent_age_seconds": uplink["oldest_unsent_age_seconds"],
            "counts": uplink["counts"],
            "disk_free_bytes": disk.free,
            "disk_total_bytes": disk.total,
            "last_error": uplink["last_error"] or uplink["last_row_error"],
        }

    async def send(self) -> None:
        assert self._session is not None
        body = await self.report()
        url = f"{self.link.base_url}/api/hub/report"
        async with self._session.post(url, json=body, ssl=self.link.ssl_context()) as reply:
            if reply.status != 200:
                raise RuntimeError(f"HTTP {reply.status}: {(await reply.text())[:200]}")
        self.last_report_at = asyncio.get_running_loop().time()
        self.last_error = ""
