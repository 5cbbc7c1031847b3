"""The uplink outbox table (PACS-19, PACS-7.1): what an edge must still deliver to each
destination, one row per (destination, instance). See :mod:`mekong.edge.uplink`.

States: ``queued`` (waiting, maybe backing off until ``next_attempt_at``), ``sending`` (in a
request now; reset to ``queued`` at start-up), ``sent`` (the destination confirmed it; ``verified``
when it echoed the same SHA-256), ``dead`` (permanent failure after ``max_attempts``; an operator
resends it).
A large object sent by resumable upload keeps ``upload_id`` / ``upload_offset`` while in
progress, so a restarted edge asks the hub where it stopped instead of starting from zero.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from mekong.shared.db.schema import metadata

STATES = ("queued", "sending", "sent", "dead")

uplink_outbox = Table(
    "uplink_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("destination", String(64), nullable=False),
    Column("instance_fk", Integer, nullable=False),  # instance.id when enqueued
    Column("sop_uid", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("state", String(8), nullable=False, server_default="queued"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("verified", Boolean, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("sent_at", Float, nullable=True),
    # a large object's resumable upload at a Mekong hub (migration uplink2): the hub's upload
    # id and the bytes it had confirmed when last asked
    Column("upload_id", String(64), nullable=False, server_default=""),
    Column("upload_offset", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("destination", "instance_fk", name="uq_uplink_destination_instance"),
)
Index("ix_uplink_pending", uplink_outbox.c.destination, uplink_outbox.c.state,
      uplink_outbox.c.next_attempt_at)  # fmt: skip
# the rows of one instance, found when reconciliation rewrites it (migration recon1)
Index("ix_uplink_outbox_instance", uplink_outbox.c.instance_fk)

# Blobs an edge freed after the hub confirmed them by digest (issue 6 item 4, PACS-8.2/8.3):
# the index rows stay (queries answer as before), the bytes come back from the hub on demand.
reclaimed_blob = Table(
    "reclaimed_blob",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("reclaimed_at", Float, nullable=False),
)

# Order status changes an enrolled edge reports to its hub (issue 6 item 2), written in the
# transaction that changed the order: ``pending`` until the hub answered, then ``sent``
# (or ``refused`` with the hub's reason, never retried).
upstream_event = Table(
    "upstream_event",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("accession", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("state", String(8), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("sent_at", Float, nullable=True),
)
Index("ix_upstream_event_state", upstream_event.c.state, upstream_event.c.id)

# Non-DICOM originals an enrolled edge delivered to its hub (issue 6 item 2; PACS-5.4 at the
# hub): one row once the hub confirmed the original's SHA-256.
original_sent = Table(
    "original_sent",
    metadata,
    Column("original_fk", Integer, primary_key=True),  # import_original.id
    Column("sent_at", Float, nullable=False),
)
