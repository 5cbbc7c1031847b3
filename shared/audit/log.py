"""The node's audit component: events queued by request handlers, written and sealed in
batches by one task (a login or a retrieval never waits for the audit fsync)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from mekong.shared.audit.trail import AuditEvent, append
from mekong.shared.background import Background

log = logging.getLogger(__name__)
_FLUSH_EVERY = 0.25
_SEAL_EVERY = 5.0


class AuditLog(Background):
    name = "audit"

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._pending: list[AuditEvent] = []
        self._wake = asyncio.Event()
        self._recent: dict[tuple, float] = {}

    def record(self, event: AuditEvent, dedupe: tuple | None = None, window: float = 300) -> None:
        """Queue an event. With ``dedupe``, repeats of the same key within ``window`` seconds
        are folded into the first (e.g. the hundreds of frame requests of one study view)."""
        if dedupe is not None:
            now = time.monotonic()
            if self._recent.get(dedupe, 0) > now:
                return
            if len(self._recent) > 10_000:
                self._recent = {k: v for k, v in self._recent.items() if v > now}
            self._recent[dedupe] = now + window
        self._pending.append(event)
        self._wake.set()

    async def start(self) -> None:
        await asyncio.to_thread(append, self.db_path, [], True)  # seal what others left
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            await asyncio.to_thread(append, self.db_path, batch, True)
        except Exception:
            log.exception("audit: %d events not written; kept for the next try", len(batch))
            self._pending[:0] = batch

    async def _run(self) -> None:
        while True:
            # also wakes now and then to seal events other processes appended
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _SEAL_EVERY)
            self._wake.clear()
            await asyncio.sleep(_FLUSH_EVERY)
            await self.flush()
