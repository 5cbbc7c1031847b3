"""Outbound HL7 tables (RIS-6.2): the destinations and the durable outbox.

``hl7_destination`` mirrors ``[[hl7.destinations]]`` of the node's configuration (written at
start-up), so every process of the node — the RIS thread, a DICOM worker handling MPPS — can
fan a status change out to the enabled destinations inside its own transaction.

``hl7_outbox`` — one row per message per destination, inserted in the same transaction as the
status change it reports. ``control_id`` (MSH-10) is fixed at insert and never changes, also
on resend, so a receiver can drop a message it already has (delivery is at-least-once).
States: ``PENDING`` (to send; ``next_attempt_at`` says when), ``SENT`` (ACK AA/CA received),
``DEAD`` (AE/AR answer or too many attempts; an admin may resend it). Migration ``recon1``.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table, Text

from mekong.shared.db.schema import metadata

PENDING = "PENDING"
SENT = "SENT"
DEAD = "DEAD"
STATES = (PENDING, SENT, DEAD)

hl7_destination = Table(
    "hl7_destination",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("message_type", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("receiving_application", String(128), nullable=False, server_default=""),
    Column("receiving_facility", String(128), nullable=False, server_default=""),
    Column("sending_facility", String(128), nullable=False, server_default=""),
    Column("viewer_url", Text, nullable=False, server_default=""),
    Column("updated_at", Float, nullable=False, server_default="0"),
)

hl7_outbox = Table(
    "hl7_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("destination", String(64), nullable=False),
    Column("control_id", String(20), nullable=False),
    Column("message_type", String(16), nullable=False),
    Column("event", String(32), nullable=False),
    Column("accession", String(16), nullable=False, server_default=""),
    Column("payload", Text, nullable=False),
    Column("state", String(8), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("ack", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("sent_at", Float, nullable=True),
)
Index("uq_hl7_outbox_control_id", hl7_outbox.c.control_id, unique=True)
Index("ix_hl7_outbox_queue", hl7_outbox.c.destination, hl7_outbox.c.state, hl7_outbox.c.id)
Index("ix_hl7_outbox_state", hl7_outbox.c.state, hl7_outbox.c.id)
Index("ix_hl7_outbox_accession", hl7_outbox.c.accession)
