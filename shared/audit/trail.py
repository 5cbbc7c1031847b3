"""Append-only audit events with a hash chain that makes tampering detectable.

Any process may append events (unsealed, ``hash = ''``). The node's main process seals them in
id order: ``hash = SHA-256(previous hash | the event's fields)``. Database triggers refuse to
change a sealed event or delete any; ``verify`` recomputes the whole chain and names the first
event that no longer matches, which also catches edits made by someone who dropped the triggers.

Sealing uses SQLite ``BEGIN IMMEDIATE`` on its own connection so two processes never chain
from the same predecessor.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUCCESS, FAILURE = "success", "failure"
_COLUMNS = ("at", "actor", "actor_kind", "source", "action", "object", "patient_id", "outcome",
            "detail")  # fmt: skip


@dataclass(frozen=True)
class AuditEvent:
    actor: str
    actor_kind: str  # user | token | ae | hl7 | system
    action: str  # e.g. login, images.retrieve, images.query, config.change
    outcome: str = SUCCESS
    source: str = ""  # peer address
    object: str = ""  # what was touched: a study UID, a user name, a setting
    patient_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def row(self) -> tuple:
        values = asdict(self)
        values["detail"] = json.dumps(self.detail, ensure_ascii=False, sort_keys=True)
        return tuple(values[c] for c in _COLUMNS)


def connect(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=15)
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def append(db_path: Path, events: Iterable[AuditEvent], seal_too: bool = False) -> int:
    """Append events (one transaction); with ``seal_too`` also seal everything unsealed."""
    rows = [e.row() for e in events]
    conn = connect(db_path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        insert(conn, rows)
        sealed = _seal(conn) if seal_too else 0
        conn.execute("COMMIT")
        return sealed
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def insert(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Unsealed events (``AuditEvent.row()``) inside the caller's transaction."""
    conn.executemany(
        f"INSERT INTO audit_event ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * 9)})", rows
    )


def seal(db_path: Path) -> int:
    return append(db_path, [], seal_too=True)


def _seal(conn: sqlite3.Connection) -> int:
    last = conn.execute("SELECT hash FROM audit_event WHERE hash != '' ORDER BY id DESC LIMIT 1")
    previous = (last.fetchone() or [""])[0]
    rows = conn.execute(
        f"SELECT id, {', '.join(_COLUMNS)} FROM audit_event WHERE hash = '' ORDER BY id"
    ).fetchall()
    for row in rows:
        digest = chain_hash(previous, row)
        conn.execute(
            "UPDATE audit_event SET prev_hash = ?, hash = ? WHERE id = ?",
            (previous, digest, row[0]),
        )
        previous = digest
    return len(rows)


_SET_HASH = "UPDATE audit_event SET prev_hash = ?, hash = ? WHERE id = ?"


def chain_hash(previous: str, row: tuple) -> str:
    """The hash of one event: its id and every field, after the previous event's hash."""
    fields = [previous, *(repr(v) if isinstance(v, float) else str(v) for v in row)]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    unsealed: int
    message: str


def verify(db_path: Path) -> Verification:
    conn = connect(db_path)
    try:
        rows = conn.execute(
            f"SELECT id, {', '.join(_COLUMNS)}, prev_hash, hash FROM audit_event ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    previous, checked, unsealed, expected_id = "", 0, 0, None
    for row in rows:
        *fields, prev_hash, digest = row
        if expected_id is not None and row[0] != expected_id:
            return Verification(False, checked, unsealed, f"event {expected_id} is missing")
        expected_id = row[0] + 1
        if not digest:
            unsealed += 1
            continue
        if unsealed:
            return Verification(False, checked, unsealed, f"event {row[0]} follows unsealed ones")
        if prev_hash != previous or chain_hash(previous, tuple(fields)) != digest:
            return Verification(False, checked, unsealed, f"event {row[0]} was altered")
        previous, checked = digest, checked + 1
    return Verification(True, checked, unsealed, f"{checked} events intact")
