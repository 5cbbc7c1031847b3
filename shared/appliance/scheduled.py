"""Backups on a schedule inside the node (QOS-5): ``[backup] to``, daily at ``at``, keeping
``keep`` snapshots. The backup itself runs on a thread (:func:`backup.take_backup`); the node
goes on storing meanwhile. Its outcome shows in ``GET /api/health`` under ``backup``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mekong.shared.appliance.backup import BackupError, BackupResult, take_backup
from mekong.shared.background import Background
from mekong.shared.config import NodeConfig

log = logging.getLogger(__name__)


def seconds_until(at: str, now: datetime) -> float:
    """Seconds from ``now`` (local, naive) to the next ``HH:MM``; a full day when it is now."""
    hour, minute = map(int, at.split(":"))
    target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    return (target - now).total_seconds()


class ScheduledBackup(Background):
    name = "backup"

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self._running = asyncio.Lock()
        self.last: dict[str, Any] = {}
        self.next_at = 0.0

    async def _run(self) -> None:
        while True:
            wait = seconds_until(self.config.backup.at, datetime.now())
            self.next_at = time.time() + wait
            await asyncio.sleep(wait)
            # a failure is logged and shown in health; the next day tries again
            with contextlib.suppress(BackupError, OSError):
                await self.run_now()

    async def run_now(self) -> BackupResult:
        """One backup now (the schedule's, or an administrator's); one at a time."""
        backup = self.config.backup
        async with self._running:
            started = time.time()
            try:
                result = await asyncio.to_thread(
                    take_backup, self.config.data_dir, Path(backup.to),
                    self.config.config_file, backup.keep,
                )  # fmt: skip
            except (BackupError, OSError) as exc:
                log.error("backup into %s failed: %s", backup.to, exc)
                self.last = {"at": started, "ok": False, "error": str(exc)}
                raise
        log.info("backup %s: %d blobs (%d new)", result.snapshot, result.blobs, result.blobs_copied)
        self.last = {"at": started, "ok": True, **describe(result)}
        return result

    async def status(self) -> dict[str, Any]:
        return {"to": self.config.backup.to, "next_at": self.next_at, "last": self.last}


def describe(result: BackupResult) -> dict[str, Any]:
    return {
        "snapshot": result.snapshot.name, "blobs": result.blobs,
        "blobs_copied": result.blobs_copied, "bytes_copied": result.bytes_copied,
        "counts": result.counts, "seconds": round(result.seconds, 2),
    }  # fmt: skip
