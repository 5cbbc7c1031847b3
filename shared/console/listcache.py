"""A cache for console fragments every user sees alike (QOS-2: 200 concurrent users).

The waiting list's table is the same for everyone who asks with the same filters, language
and permissions, and it is what most users have open: re-drawing 200 rows for each of them
(about 40 ms of the node's one core) is what limited the console benchmark. An entry lives
until any order changes (``events.order_changed``, the same nudge the pages listen to, so a
page re-reading after a nudge never gets the old table) and at most ``TTL`` seconds (changes
made by another process, e.g. MPPS in a DICOM worker, send no nudge here). Requests that
arrive while an entry is being made wait for it instead of making it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from aiohttp import web

from mekong.shared.ris import events

TTL = 2.0
AFTER_COMMIT = 0.1  # seconds: a change's transaction has committed by then
MAX_ENTRIES = 256


class FragmentCache:
    def __init__(self, ttl: float = TTL) -> None:
        self.ttl = ttl
        self._entries: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}  # key: (until, value)
        self.generation = 0

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def get(self, key: Hashable, make: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value for ``key`` (rows, a drawn table), or ``make()``'s, made once for
        every caller waiting (in its own task: one that goes away does not cancel it for the
        others)."""
        now = time.monotonic()
        found = self._entries.get(key)
        if found is None or found[0] < now:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            task = asyncio.ensure_future(make())
            found = (now + self.ttl, task)
            self._entries[key] = found
            task.add_done_callback(functools.partial(self._made, key, self.generation))
        return await asyncio.shield(found[1])

    def _made(self, key: Hashable, generation: int, task: asyncio.Future[Any]) -> None:
        """A failed entry is not kept, nor one made while an order changed."""
        failed = task.cancelled() or task.exception() is not None
        current = self._entries.get(key)
        if (failed or generation != self.generation) and current and current[1] is task:
            del self._entries[key]


CACHE = web.AppKey("console_fragments", FragmentCache)


def install(app: web.Application) -> None:
    """One cache per application, emptied at every order change."""
    app[CACHE] = FragmentCache()
    app.on_startup.append(_start)
    app.on_shutdown.append(_stop)


_TASK = web.AppKey("console_fragments_task", asyncio.Task)


async def _start(app: web.Application) -> None:
    app[_TASK] = asyncio.create_task(_follow(app[CACHE]), name="console-fragments")


async def _stop(app: web.Application) -> None:
    app[_TASK].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[_TASK]


async def _follow(cache: FragmentCache) -> None:
    """Empty the cache at each nudge, and again a moment later: the nudge is sent inside the
    changing transaction, so an entry made in between may hold the state before its commit
    (pages re-read 300 ms after a nudge, after the second clearing)."""
    loop = asyncio.get_running_loop()
    with events.subscription() as queue:
        while True:
            if not await queue.get():
                return  # the node stops
            cache.clear()
            loop.call_later(AFTER_COMMIT, cache.clear)


def cache_of(request: web.Request) -> FragmentCache:
    return request.app[CACHE]
