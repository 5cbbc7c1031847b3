"""The edge's reclamation component ``reclaim`` (issue 6 item 4, PACS-8.2, PACS-12).

Every ``reclaim.interval`` seconds (or on ``POST /api/reclaim/run``): among the studies the hub
confirmed by digest, oldest last image first, free those older than ``reclaim.after_days`` and,
while the data disk has less than ``reclaim.min_free_percent`` free, the oldest ones too. The
freed blobs are recorded first, in one transaction, and deleted after, so a crash in between
leaves a file too many, never a study nobody knows to fetch back. The index rows stay: the
study is still found by C-FIND, QIDO and the console, and is fetched back when read.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from typing import TYPE_CHECKING, Any

from mekong.edge.reclaim.candidates import Confirmed, confirmed_studies, mark_freed
from mekong.shared.audit.trail import AuditEvent
from mekong.shared.background import Background

if TYPE_CHECKING:
    from mekong.shared.node import Node

log = logging.getLogger(__name__)
DAY = 86400.0


class Reclaimer(Background):
    name = "reclaim"

    def __init__(self, node: Node) -> None:
        self.node = node
        self.config = node.config.reclaim
        self.destination = node.config.uplink.destination
        self.studies_freed = 0
        self.bytes_freed = 0
        self.last_run: float | None = None
        self._lock = asyncio.Lock()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.interval)
            try:
                await self.run_once()
            except Exception:  # never die: the index may be busy
                log.exception("reclamation failed; next try in %.0f s", self.config.interval)

    async def run_once(self) -> list[str]:
        """One pass; returns the Study Instance UIDs freed."""
        assert self.node.index is not None
        async with self._lock:
            self.last_run = time.time()
            found = await self.node.index.reading(
                lambda conn: confirmed_studies(conn, self.destination)
            )
            freed = []
            for study in found:
                if not self._due(study):
                    break  # the rest are younger, and the disk has room
                await self._free(study)
                freed.append(study.study_uid)
            return freed

    def _due(self, study: Confirmed) -> bool:
        old = (
            self.config.after_days > 0
            and study.last_at < time.time() - self.config.after_days * DAY
        )
        return old or self.free_percent() < self.config.min_free_percent

    def free_percent(self) -> float:
        disk = shutil.disk_usage(self.node.config.data_dir)
        return 100.0 * disk.free / disk.total

    async def _free(self, study: Confirmed) -> None:
        assert self.node.index is not None and self.node.blobs is not None
        digests = await self.node.index.transaction(
            lambda conn: mark_freed(conn, study.study_uid, self.destination)
        )
        await asyncio.to_thread(self.node.blobs.free, digests)
        self.studies_freed += 1
        self.bytes_freed += study.size
        log.info("study %s freed (%d blobs, %d bytes): the hub keeps it", study.study_uid,
                 len(digests), study.size)  # fmt: skip
        if self.node.audit is not None:
            self.node.audit.record(AuditEvent("reclaim", "system", "study.reclaim",
                                              object=study.study_uid,
                                              detail={"blobs": len(digests)}))  # fmt: skip

    async def health(self) -> dict[str, Any]:
        return {"state": self.state, "studies_freed": self.studies_freed,
                "bytes_freed": self.bytes_freed, "last_run": self.last_run,
                "free_percent": round(self.free_percent(), 1)}  # fmt: skip
