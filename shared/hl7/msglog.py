"""The HL7 message log (PACS-16.5): every inbound message, its outcome, what it changed and the
ACK sent, written in the same transaction as the changes (so log and data never disagree)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from mekong.shared.db.ris_schema import hl7_message
from mekong.shared.hl7.message import Header

RETRYABLE = "207"  # an internal error: a resend is processed again, not answered from the log

# Built once: every message runs both, and building a statement costs more than running it.
_INSERT = hl7_message.insert()
_ORIGINAL = (
    select(hl7_message.c.id, hl7_message.c.outcome, hl7_message.c.ack)
    .where(
        hl7_message.c.sending_app == bindparam("app"),
        hl7_message.c.sending_facility == bindparam("facility"),
        hl7_message.c.control_id == bindparam("control_id"),
        hl7_message.c.duplicate_of.is_(None),
        hl7_message.c.error_code != RETRYABLE,
    )
    .order_by(hl7_message.c.id)
    .limit(1)
)


@dataclass
class Entry:
    header: Header
    received_at: float
    raw: str
    outcome: str
    ack: str
    error_code: str = ""
    error_text: str = ""
    changes: tuple[str, ...] = ()
    duplicate_of: int | None = None


def insert(conn: Connection, entry: Entry) -> int:
    header = entry.header
    result = conn.execute(
        _INSERT,
        dict(
            control_id=header.control_id[:64],
            sending_app=header.sending_app[:128],
            sending_facility=header.sending_facility[:128],
            message_type=header.message_type[:16],
            version=header.version[:16],
            charset=header.charset[:32],
            received_at=entry.received_at,
            raw=entry.raw,
            outcome=entry.outcome,
            error_code=entry.error_code,
            error_text=entry.error_text,
            changes=json.dumps(list(entry.changes), ensure_ascii=False),
            ack=entry.ack,
            duplicate_of=entry.duplicate_of,
        ),
    )
    return int(result.inserted_primary_key[0])


def original(conn: Connection, header: Header) -> Any | None:
    """The first processed message with this sender and control ID (not an internal error)."""
    params = {"app": header.sending_app, "facility": header.sending_facility,
              "control_id": header.control_id}  # fmt: skip
    return conn.execute(_ORIGINAL, params).first()


def search(
    conn: Connection,
    *,
    control_id: str = "",
    message_type: str = "",
    outcome: str = "",
    since: float | None = None,
    until: float | None = None,
    text: str = "",
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first. ``message_type`` matches ``ORM`` or ``ORM^O01``; ``text`` is a substring
    of the raw message (ASCII case-insensitive)."""
    c = hl7_message.c
    query = select(hl7_message).order_by(c.id.desc()).limit(limit)
    if control_id:
        query = query.where(c.control_id == control_id)
    if message_type:
        query = query.where((c.message_type == message_type) | c.message_type.like(
            f"{_escape_like(message_type)}^%", escape="\\"))  # fmt: skip
    if outcome:
        query = query.where(c.outcome == outcome)
    if since is not None:
        query = query.where(c.received_at >= since)
    if until is not None:
        query = query.where(c.received_at < until)
    if text:
        query = query.where(c.raw.like(f"%{_escape_like(text)}%", escape="\\"))
    return [entry_json(row) for row in conn.execute(query).all()]


def get(conn: Connection, message_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(hl7_message).where(hl7_message.c.id == message_id)).first()
    return None if row is None else {**entry_json(row), "raw": row.raw, "ack": row.ack}


def entry_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "control_id": row.control_id,
        "sending_app": row.sending_app,
        "sending_facility": row.sending_facility,
        "type": row.message_type,
        "version": row.version,
        "charset": row.charset,
        "received_at": row.received_at,
        "outcome": row.outcome,
        "error_code": row.error_code,
        "error": row.error_text,
        "changes": json.loads(row.changes or "[]"),
        "duplicate_of": row.duplicate_of,
    }


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
