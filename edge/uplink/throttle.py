"""Bandwidth cap for the uplink (QOS-3): a token bucket of bytes per second."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """``take(n)`` waits until ``n`` bytes may go; the bucket holds at most one second's worth,
    so a pause never turns into a burst above the cap. ``rate`` 0 means unlimited."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._tokens = float(rate)
        self._stamp = time.monotonic()

    async def take(self, amount: int) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        self._tokens = min(float(self.rate), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= amount
        if self._tokens < 0:
            await asyncio.sleep(-self._tokens / self.rate)

    def set_rate(self, rate: int) -> None:
        """A new cap (a configuration bundle), in force from the next ``take``."""
        if rate != self.rate:
            self.rate = rate
            self._tokens = min(self._tokens, float(rate))
