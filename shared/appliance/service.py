"""What the node tells systemd over its life: starting, ready, alive, stopping (QOS-3.1).

``READY=1`` is sent once every component has started, the moment ``GET /api/health`` can first
say ``ok``; components that are up but waiting on the network (an edge enrolling with an
unreachable hub) do not hold it back, because the edge must serve its clinic while the WAN is
down and a start that never completes would make systemd restart it in a loop.
"""

from __future__ import annotations

from mekong.shared.appliance.sdnotify import Notifier, watchdog_interval
from mekong.shared.appliance.watchdog import LivenessCheck, Watchdog


class SystemdLink:
    def __init__(self, notifier: Notifier, check: LivenessCheck) -> None:
        self._notifier = notifier
        self._check = check
        self._watchdog: Watchdog | None = None

    @classmethod
    def from_env(cls, check: LivenessCheck) -> SystemdLink:
        return cls(Notifier.from_env(), check)

    def status(self, text: str) -> None:
        self._notifier.status(text)

    def ready(self, status: str) -> None:
        self._notifier.ready(status)
        interval = watchdog_interval()
        if interval is not None and self._notifier.enabled:
            self._watchdog = Watchdog(self._notifier, interval, self._check)
            self._watchdog.start()

    async def stopping(self, status: str) -> None:
        if self._watchdog is not None:
            await self._watchdog.stop()
        self._notifier.stopping(status)

    def close(self) -> None:
        self._notifier.close()


def stuck_after() -> float:
    """How long one index commit may take before the node counts as hung: the whole
    watchdog period (systemd then kills it one more period later)."""
    interval = watchdog_interval()
    return 2 * interval if interval is not None else float("inf")
