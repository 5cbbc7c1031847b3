"""The systemd watchdog feed: a ping every half ``WATCHDOG_USEC``, only while the node is alive.

Availability QOS-3.1: when a ping is missed for ``WatchdogSec``, systemd kills the node and
``Restart=on-failure`` starts it again. The pings come from a task on the node's event loop, so a
blocked loop stops them by itself; the ``check`` covers what the loop cannot see (the index
writer thread dead or stuck in one commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from mekong.shared.appliance.sdnotify import Notifier

log = logging.getLogger(__name__)

LivenessCheck = Callable[[], "str | None"]  # a problem, or None when alive


class Watchdog:
    def __init__(self, notifier: Notifier, interval: float, check: LivenessCheck) -> None:
        self._notifier = notifier
        self._interval = interval
        self._check = check
        self._task: asyncio.Task[None] | None = None
        self.missed = 0  # pings withheld since the last healthy check

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sd-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self.beat()
            await asyncio.sleep(self._interval)

    def beat(self) -> None:
        problem = self._check()
        if problem is None:
            if self.missed:
                log.warning("node alive again after %d withheld watchdog pings", self.missed)
                self.missed = 0
            self._notifier.watchdog()
            return
        self.missed += 1
        log.error("withholding the systemd watchdog ping: %s", problem)
        self._notifier.status(f"unhealthy: {problem}")
