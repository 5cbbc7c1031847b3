"""The uplink's rule for now (QOS-3, PACS-19): the bandwidth cap of the first schedule window
that holds the local time, or that the queue waits; outside every window the base cap
(``uplink.bandwidth``, which a configuration bundle may change)."""

from __future__ import annotations

import datetime

from mekong.shared.config import UplinkWindow

PAUSED = None


class Schedule:
    def __init__(self, windows: tuple[UplinkWindow, ...], base: int) -> None:
        self.windows = windows
        self.base = base

    def rate_now(self, now: datetime.datetime | None = None) -> int | None:
        """Bytes/s allowed now (0 = unlimited), or ``PAUSED``."""
        minute = _minutes((now or datetime.datetime.now()).strftime("%H:%M"))
        for window in self.windows:
            if _holds(window, minute):
                return PAUSED if window.pause else window.bandwidth
        return self.base

    def describe(self) -> str:
        rate = self.rate_now()
        if rate is PAUSED:
            return "paused by the schedule"
        return "unlimited" if rate == 0 else f"{rate} bytes/s"


def _holds(window: UplinkWindow, minute: int) -> bool:
    start, end = _minutes(window.start), _minutes(window.end)
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps past midnight


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)
