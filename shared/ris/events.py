"""In-process order events, two kinds (RIS-3.5, RIS-5.3, RIS-5.4).

**"An order changed"** — a nudge for the console's live waiting list. The order functions call
:func:`order_changed` (on the RIS thread, or a DIMSE thread for MPPS); subscribers are asyncio
queues of the HTTP loop, fed thread-safely. Nothing is stored: a subscriber that is gone or
full simply misses a nudge, and the page re-reads the list anyway. The RIS thread runs reads
after the committing transaction, so a re-read sees the change.

**"An order's status changed"** — :class:`OrderStatusChanged`, the hook outbound HL7 (ORM^O01
SC / OMI^O23 to the HIS; issue 4 item 7) connects to. A listener registered with
:func:`on_status_changed` is called by :func:`status_changed` **inside the transaction that
made the change**, with its connection: what it writes there (an outbox row) commits or rolls
back with the change, so a status change is never lost and never reported twice. A listener
that raises rolls the change back (an MPPS request is then refused and the modality retries).
Keep listeners short: the transaction holds the RIS write lock. Publishers today: MPPS
(``cause="mpps"``). Listeners are per process: register at import time of a module every
process that serves DICOM imports (the node and each ``dicom.workers`` process run MPPS).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection

from mekong.shared.ris.status import Status

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


# --- order status changes, inside the transaction ---------------------------------------------


@dataclass(frozen=True)
class OrderStatusChanged:
    accession: str
    previous: Status
    status: Status
    cause: str  # what moved it: "mpps" (later "hl7", "rest", "reconcile")
    # e.g. {"pps_uid": ..., "pps_status": ..., "station_ae": ..., "modality": ...}
    detail: Mapping[str, str] = field(default_factory=dict)


StatusListener = Callable[[Connection, OrderStatusChanged], None]
_status_listeners: list[StatusListener] = []


def on_status_changed(listener: StatusListener) -> Callable[[], None]:
    """Call ``listener`` for every order status change; returns the unsubscribe function."""
    _status_listeners.append(listener)
    return lambda: _status_listeners.remove(listener) if listener in _status_listeners else None


def status_changed(conn: Connection, event: OrderStatusChanged) -> None:
    """Publish a status change to every listener, in the caller's transaction."""
    for listener in list(_status_listeners):
        listener(conn, event)
