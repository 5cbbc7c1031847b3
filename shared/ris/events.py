"""A tiny in-process publisher: "an order changed" for the console's live waiting list.

The order functions call :func:`order_changed` (on the RIS thread, or a DIMSE thread for MPPS);
subscribers are asyncio queues of the HTTP loop, fed thread-safely. Nothing is stored: a
subscriber that is gone or full simply misses a nudge, and the page re-reads the list anyway.
The RIS thread runs reads after the committing transaction, so a re-read sees the change.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]] = set()
QUEUE_SIZE = 64


def order_changed(accession: str) -> None:
    """Tell every subscriber that the order ``accession`` was created or changed."""
    with _lock:
        targets = list(_subscribers)
    for loop, queue in targets:
        if not loop.is_closed():
            loop.call_soon_threadsafe(_offer, queue, accession)


def close_all() -> None:
    """At shut-down: every subscriber gets "" (the end), so open streams finish."""
    with _lock:
        targets = list(_subscribers)
    for loop, queue in targets:
        if not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, "")


def _offer(queue: asyncio.Queue[str], accession: str) -> None:
    if queue.qsize() < QUEUE_SIZE - 1:  # room kept for the end
        queue.put_nowait(accession)


@contextmanager
def subscription() -> Iterator[asyncio.Queue[str]]:
    """A queue of changed accessions for the running loop, for the ``with`` block."""
    entry = (asyncio.get_running_loop(), asyncio.Queue[str](QUEUE_SIZE))
    with _lock:
        _subscribers.add(entry)
    try:
        yield entry[1]
    finally:
        with _lock:
            _subscribers.discard(entry)
