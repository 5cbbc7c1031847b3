"""Health reports from the edge to its hub (issue 6, QOS-3): every ``[hub] report_interval``
seconds, over mutual TLS, ``POST /api/hub/report`` with the version, the uplink's queue depth,
the age of the oldest unsent instance, the data disk and the last error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from typing import TYPE_CHECKING, Any

import aiohttp

from mekong.edge.hub.link import HubLink

if TYPE_CHECKING:
    from mekong.edge.uplink.sender import UplinkSender
    from mekong.shared.node import Node

log = logging.getLogger(__name__)


class HealthReporter:
    name = "hub-report"

    def __init__(self, node: Node, link: HubLink, sender: UplinkSender) -> None:
        self.node, self.link, self.sender = node, link, sender
        self.state = "stopped"
        self.last_report_at: float | None = None
        self.last_error = ""
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self._task = asyncio.create_task(self._run(), name=self.name)
        self.state = "running"

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session:
            await self._session.close()
        self.state = "stopped"

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
