"""An edge's audit trail, kept at its hub too (issue 6 item 2; SEC-7, GEN-4: one place to
audit every site). The edge sends its sealed events in id order; the hub appends each as its
own event with ``source = "site:<name>"`` and the edge's id and hash in ``detail``, skipping
ids it already holds — in the same transaction that appends, so a resend after a lost answer
never stores an event twice. The hub's own chain then seals them like any other event."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from mekong.shared.audit.trail import AuditEvent, connect, insert

FIELDS = ("at", "actor", "actor_kind", "source", "action", "object", "patient_id", "outcome",
          "detail")  # fmt: skip
TEXTS = ("actor", "actor_kind", "action", "object", "patient_id", "outcome")
_LAST = ("SELECT max(CAST(json_extract(detail, '$.site_event_id') AS INTEGER)) "
         "FROM audit_event WHERE source = ?")  # fmt: skip


def sealed_after(db_path: Path, after: int, limit: int) -> list[dict[str, Any]]:
    """The edge's sealed events with id > ``after``, oldest first, as JSON objects."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=15)
    try:
        query = (f"SELECT id, hash, {', '.join(FIELDS)} FROM audit_event "
                 "WHERE id > ? AND hash != '' ORDER BY id LIMIT ?")  # fmt: skip
        rows = conn.execute(query, (after, limit)).fetchall()
    finally:
        conn.close()
    return [{"id": r[0], "hash": r[1], **dict(zip(FIELDS, r[2:], strict=True))} for r in rows]


def append_from_site(db_path: Path, site: str, events: list[dict[str, Any]]) -> tuple[int, int]:
    """(events appended, the newest edge id the hub now holds). ValueError on a bad event."""
    source = f"site:{site}"
    conn = connect(db_path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        last = conn.execute(_LAST, (source,)).fetchone()[0] or 0
        new = [_event(e, source) for e in events if _id(e) > last]
        insert(conn, [event.row() for event in new])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return len(new), max([last, *(_id(e) for e in events)])


def _id(event: dict[str, Any]) -> int:
    value = event.get("id")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("every event needs its id at the edge (a whole number ≥ 1)")
    return value


def _event(event: dict[str, Any], source: str) -> AuditEvent:
    try:
        detail = json.loads(event.get("detail") or "{}")
        at = float(event["at"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"event {event.get('id')}: at and detail (JSON) are needed") from None
    texts = {k: str(event.get(k) or "")[:256] for k in TEXTS}
    if not texts["action"]:
        raise ValueError(f"event {event['id']}: action is needed")
    detail = {**(detail if isinstance(detail, dict) else {"value": detail}),
              "site_event_id": event["id"], "site_hash": str(event.get("hash", "")),
              "site_source": str(event.get("source") or "")}  # fmt: skip
    return AuditEvent(texts["actor"], texts["actor_kind"], texts["action"],
                      texts["outcome"] or "success", source=source, object=texts["object"],
                      patient_id=texts["patient_id"], detail=detail, at=at)  # fmt: skip
