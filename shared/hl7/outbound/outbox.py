"""The durable HL7 outbox (RIS-6.2): rows in ``hl7_outbox``, one per message per destination.

:func:`enqueue` runs inside the transaction that changes the order, so the message exists if
and only if the change committed. The sender moves a row PENDING → SENT on ACK AA, → DEAD on
AE/AR or after the last attempt, or back to PENDING with a later ``next_attempt_at``
(capped exponential back-off). :func:`resend` puts a DEAD row back in its queue with its
attempts reset and the same MSH-10.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update

from mekong.shared.db.outbox_schema import DEAD, PENDING, SENT, hl7_destination, hl7_outbox
from mekong.shared.hl7.outbound.build import Addressing, StatusEvent, build_message

log = logging.getLogger(__name__)
_listeners: list[Callable[[], None]] = []
_listeners_lock = threading.Lock()


@dataclass(frozen=True)
class Destination:
    name: str
    host: str
    port: int
    message_type: str
    enabled: bool = True
    receiving_application: str = ""
    receiving_facility: str = ""
    sending_facility: str = ""
    viewer_url: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 20
    initial: float = 2.0
    cap: float = 300.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed delivery."""
        return min(self.cap, self.initial * 2 ** max(0, attempts - 1))


class OutboxError(Exception):
    """An outbox operation the row's state does not allow; ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def on_enqueue(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener`` (any thread) after this process enqueued a message; returns a
    function that removes it. The sender uses it to start at once instead of at its next poll."""
    with _listeners_lock:
        _listeners.append(listener)

    def remove() -> None:
        with _listeners_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return remove


def sync_destinations(conn: Connection, destinations: Iterable[Destination]) -> None:
    """Make ``hl7_destination`` equal the configuration; destinations no longer configured
    stay as rows, disabled, so their queued messages remain visible."""
    now = time.time()
    wanted = {d.name: d for d in destinations}
    known = set(conn.execute(select(hl7_destination.c.name)).scalars())
    for name in known - set(wanted):
        conn.execute(update(hl7_destination).where(hl7_destination.c.name == name)
                     .values(enabled=False, updated_at=now))  # fmt: skip
    for dest in wanted.values():
        values = {**asdict(dest), "updated_at": now}
        if dest.name in known:
            conn.execute(
                update(hl7_destination).where(hl7_destination.c.name == dest.name).values(values)
            )
        else:
            conn.execute(hl7_destination.insert().values(values))


def destinations(conn: Connection, enabled_only: bool = True) -> list[Destination]:
    query = select(hl7_destination).order_by(hl7_destination.c.name)
    if enabled_only:
        query = query.where(hl7_destination.c.enabled.is_(True))
    return [Destination(**{k: v for k, v in row._mapping.items() if k != "updated_at"})
            for row in conn.execute(query)]  # fmt: skip


def enqueue(conn: Connection, event: StatusEvent) -> list[str]:
    """One outbox row per enabled destination, built now; returns their MSH-10 values.
    Call inside the transaction that records the change (RIS-6.2)."""
    now = time.time()
    control_ids = []
    for dest in destinations(conn):
        control_id = f"MK{uuid.uuid4().hex[:18].upper()}"
        to = Addressing(dest.sending_facility, dest.receiving_application,
                        dest.receiving_facility, dest.viewer_url)  # fmt: skip
        conn.execute(hl7_outbox.insert().values(
            destination=dest.name, control_id=control_id, message_type=dest.message_type,
            event=event.event, accession=event.accession, state=PENDING, created_at=now,
            updated_at=now, next_attempt_at=now,
            payload=build_message(event, dest.message_type, control_id, to),
        ))  # fmt: skip
        control_ids.append(control_id)
    if control_ids:
        _notify()
    return control_ids


def _notify() -> None:
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener()
        except Exception:
            log.exception("outbox listener failed")


def head(conn: Connection, destination: str) -> Any | None:
    """The oldest PENDING row of a destination's queue (sent in id order)."""
    query = (
        select(hl7_outbox)
        .where(hl7_outbox.c.destination == destination, hl7_outbox.c.state == PENDING)
        .order_by(hl7_outbox.c.id)
        .limit(1)
    )
    return conn.execute(query).first()


def mark_sent(conn: Connection, row_id: int, ack: str) -> None:
    now = time.time()
    conn.execute(update(hl7_outbox).where(hl7_outbox.c.id == row_id, hl7_outbox.c.state == PENDING)
                 .values(state=SENT, ack=ack, sent_at=now, updated_at=now, last_error="",
                         attempts=hl7_outbox.c.attempts + 1))  # fmt: skip


def mark_dead(conn: Connection, row_id: int, error: str, ack: str = "") -> None:
    conn.execute(update(hl7_outbox).where(hl7_outbox.c.id == row_id, hl7_outbox.c.state == PENDING)
                 .values(state=DEAD, last_error=error, ack=ack, updated_at=time.time(),
                         attempts=hl7_outbox.c.attempts + 1))  # fmt: skip


def mark_failed(conn: Connection, row_id: int, error: str, policy: RetryPolicy) -> str:
    """One more failed delivery: back to the queue later, or DEAD after the last attempt.
    Returns the row's new state."""
    row = conn.execute(select(hl7_outbox.c.attempts, hl7_outbox.c.state)
                       .where(hl7_outbox.c.id == row_id)).first()  # fmt: skip
    if row is None or row.state != PENDING:
        return row.state if row else ""
    attempts = row.attempts + 1
    now = time.time()
    if attempts >= policy.max_attempts:
        conn.execute(update(hl7_outbox).where(hl7_outbox.c.id == row_id).values(
            state=DEAD, attempts=attempts, updated_at=now,
            last_error=f"not delivered after {attempts} attempts; last: {error}",
        ))  # fmt: skip
        return DEAD
    conn.execute(update(hl7_outbox).where(hl7_outbox.c.id == row_id).values(
        attempts=attempts, last_error=error, updated_at=now,
        next_attempt_at=now + policy.delay(attempts),
    ))  # fmt: skip
    return PENDING


def resend(conn: Connection, row_id: int) -> dict[str, Any]:
    """A dead-lettered message back in its destination's queue (same MSH-10)."""
    row = conn.execute(select(hl7_outbox).where(hl7_outbox.c.id == row_id)).first()
    if row is None:
        raise OutboxError(f"no outbound message #{row_id}", 404)
    if row.state != DEAD:
        raise OutboxError(f"message #{row_id} is {row.state}; only DEAD messages are resent", 409)
    now = time.time()
    conn.execute(update(hl7_outbox).where(hl7_outbox.c.id == row_id).values(
        state=PENDING, attempts=0, next_attempt_at=now, updated_at=now,
    ))  # fmt: skip
    _notify()
    return get(conn, row_id) or {}


def get(conn: Connection, row_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(hl7_outbox).where(hl7_outbox.c.id == row_id)).first()
    return None if row is None else row_json(row, with_payload=True)


def search(
    conn: Connection, state: str = "", destination: str = "", accession: str = "",
    limit: int = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    """Newest first."""
    query = select(hl7_outbox)
    if state:
        query = query.where(hl7_outbox.c.state == state)
    if destination:
        query = query.where(hl7_outbox.c.destination == destination)
    if accession:
        query = query.where(hl7_outbox.c.accession == accession)
    rows = conn.execute(query.order_by(hl7_outbox.c.id.desc()).limit(limit))
    return [row_json(row) for row in rows]


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(hl7_outbox.c.state, func.count()).group_by(hl7_outbox.c.state))
    found = {state: 0 for state in (PENDING, SENT, DEAD)}
    found.update({state: int(n) for state, n in rows})
    return found


def row_json(row: Any, with_payload: bool = False) -> dict[str, Any]:
    body = {
        "id": row.id,
        "destination": row.destination,
        "control_id": row.control_id,
        "message_type": row.message_type,
        "event": row.event,
        "accession": row.accession,
        "state": row.state,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at if row.state == PENDING else None,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "sent_at": row.sent_at,
    }
    if with_payload:
        body["payload"] = row.payload
        body["ack"] = row.ack
    return body
