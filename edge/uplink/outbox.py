"""The durable outbox (PACS-19): SQL on a synchronous connection, run through
:meth:`Index.transaction` / :meth:`Index.reading`.

Enqueueing reads the index instead of hooking the store path: every instance row with an id
above the highest one already enqueued for a destination gets an outbox row, in one
``INSERT … SELECT``. Instance rows are committed durably before a store is acknowledged and
the single writer (SQLite's write lock) hands out ids in commit order, so after a crash the
next scan finds everything acknowledged and not yet enqueued; C-STORE never waits for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, literal, literal_column, or_, select, update

from mekong.shared.db import schema as t
from mekong.shared.db.schema_uplink import uplink_outbox as o

ENQUEUE_CHUNK = 5000


@dataclass(frozen=True)
class Pending:
    id: int
    sop_uid: str
    digest: str
    size: int
    attempts: int
    upload_id: str = ""  # a resumable upload in progress at the hub
    upload_offset: int = 0  # the bytes the hub had confirmed when last asked


def enqueue_new(conn: Connection, destination: str, reconciled_only: bool = False) -> int:
    """Add outbox rows for instances stored since the last scan; returns how many.

    With ``reconciled_only`` (the node reconciles stored studies with orders) the scan stops
    before the first instance the reconciler has not seen yet, so an instance leaves with the
    demographics of its order, not as the modality sent it (``mekong.shared.recon``)."""
    last = (
        select(func.coalesce(func.max(o.c.instance_fk), 0))
        .where(o.c.destination == destination)
        .scalar_subquery()
    )
    source = (
        select(
            literal(destination),
            t.instance.c.id,
            t.instance.c.sop_uid,
            t.instance.c.digest,
            t.instance.c.size,
            literal(time.time()),
        )  # fmt: skip
        .where(t.instance.c.id > last)
        .order_by(t.instance.c.id)
        .limit(ENQUEUE_CHUNK)
    )
    if reconciled_only:
        first_open = (  # the partial index holds only unseen rows: its first entry, O(1)
            select(func.min(t.instance.c.id))
            .where(t.instance.c.recon == literal_column("0"))
            .scalar_subquery()
        )
        source = source.where(or_(first_open.is_(None), t.instance.c.id < first_open))
    columns = ["destination", "instance_fk", "sop_uid", "digest", "size", "created_at"]
    return conn.execute(o.insert().from_select(columns, source)).rowcount or 0


def resume(conn: Connection, destination: str) -> int:
    """Put rows a stopped or killed process left in ``sending`` back in the queue."""
    statement = (
        update(o)
        .where(o.c.destination == destination, o.c.state == "sending")
        .values(state="queued")
    )
    return conn.execute(statement).rowcount or 0


def claim(conn: Connection, destination: str, limit: int, max_bytes: int) -> list[Pending]:
    """The next due rows (oldest first, at most ``max_bytes`` unless one alone is bigger),
    marked ``sending``."""
    rows = conn.execute(
        select(
            o.c.id,
            o.c.sop_uid,
            o.c.digest,
            o.c.size,
            o.c.attempts,
            o.c.upload_id,
            o.c.upload_offset,
        )
        .where(
            o.c.destination == destination,
            o.c.state == "queued",
            o.c.next_attempt_at <= time.time(),
        )  # fmt: skip
        .order_by(o.c.id)
        .limit(limit)
    ).all()
    batch: list[Pending] = []
    total = 0
    for row in rows:
        if batch and total + row.size > max_bytes:
            break
        batch.append(Pending(*row))
        total += row.size
    if batch:
        ids = [p.id for p in batch]
        conn.execute(update(o).where(o.c.id.in_(ids)).values(state="sending"))
    return batch


def remember_upload(conn: Connection, row_id: int, upload_id: str, offset: int) -> None:
    """Note where a row's resumable upload stands (the hub stays the authority)."""
    values = {"upload_id": upload_id, "upload_offset": offset}
    conn.execute(update(o).where(o.c.id == row_id).values(**values))


def mark_sent(conn: Connection, ids: list[int], verified: bool) -> None:
    if ids:
        values = {"state": "sent", "verified": verified, "sent_at": time.time(), "last_error": ""}
        conn.execute(update(o).where(o.c.id.in_(ids)).values(**values))


def mark_failed(conn: Connection, row_id: int, state: str, error: str, retry_at: float) -> None:
    """Count an attempt; ``state`` is ``queued`` (retry at ``retry_at``) or ``dead``."""
    values = {"state": state, "attempts": o.c.attempts + 1, "last_error": error[:2000],
              "next_attempt_at": retry_at}  # fmt: skip
    conn.execute(update(o).where(o.c.id == row_id).values(**values))


def resend(conn: Connection, row_id: int) -> bool:
    """Queue a dead-lettered row again, attempts reset; False when it is not dead."""
    values = {"state": "queued", "attempts": 0, "next_attempt_at": 0.0, "upload_id": "",
              "upload_offset": 0}  # fmt: skip
    result = conn.execute(update(o).where(o.c.id == row_id, o.c.state == "dead").values(**values))
    return bool(result.rowcount)


def listing(conn: Connection, destination: str, state: str | None, limit: int) -> list[dict]:
    statement = select(o).where(o.c.destination == destination).order_by(o.c.id).limit(limit)
    if state:
        statement = statement.where(o.c.state == state)
    return [_public(dict(row)) for row in conn.execute(statement).mappings()]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    row["verified"] = bool(row["verified"])
    return row


def summary(conn: Connection, destination: str) -> dict[str, Any]:
    """Counts per state, age of the oldest unsent row, the newest error (health, QOS-3)."""
    counts = dict(
        conn.execute(
            select(o.c.state, func.count()).where(o.c.destination == destination)
            .group_by(o.c.state)
        ).all()
    )  # fmt: skip
    unsent = (o.c.destination == destination) & o.c.state.in_(("queued", "sending", "dead"))
    oldest = conn.execute(select(func.min(o.c.created_at)).where(unsent)).scalar()
    error = conn.execute(
        select(o.c.last_error).where(unsent, o.c.last_error != "").order_by(o.c.id.desc()).limit(1)
    ).scalar()
    return {
        "counts": {
            state: int(counts.get(state, 0)) for state in ("queued", "sending", "sent", "dead")
        },
        "oldest_unsent_age_seconds": round(time.time() - oldest, 1) if oldest else 0.0,
        "last_row_error": error or "",
    }
