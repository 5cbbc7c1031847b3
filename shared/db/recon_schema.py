"""Reconciliation tables (RIS-3.8, FLOW-1/2, PACS-6): which order a stored study belongs to,
and the study-level work the reconciler still owes.

``recon_study`` — one row per study the reconciler has looked at: ``LINKED`` to an order
(``order_fk``, how it matched) or ``UNMATCHED`` (``reason``, an optional suggested order that is
never linked on its own). One order may own several studies (RIS-3.8).

``recon_work`` — studies whose stored instances must be (re)coerced: a manual link, a patient
update (ADT^A08) or merge (ADT^A40). Written in the same transaction as the change that asks
for it, so a restart finds it again; ``seq`` grows with every new request, and the reconciler
removes the row only if no request arrived while it worked.

New instances are found through ``instance.recon = 0`` (archive schema). Migration ``recon1``.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text

from mekong.shared.db.schema import metadata

LINKED = "LINKED"
UNMATCHED = "UNMATCHED"

recon_study = Table(
    "recon_study",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("study_uid", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("order_fk", Integer, ForeignKey("ris_order.id"), nullable=True),
    Column("matched_by", String(32), nullable=False, server_default=""),
    Column("reason_code", String(32), nullable=False, server_default=""),
    Column("reason", Text, nullable=False, server_default=""),
    Column("suggested_order_fk", Integer, ForeignKey("ris_order.id"), nullable=True),
    # steps the reconciler moved to IN_PROGRESS (comma-separated SPS IDs): it completes them
    # when the study has been idle long enough, unless MPPS or a person did first
    Column("started_steps", Text, nullable=False, server_default=""),
    Column("linked_by", String(128), nullable=False, server_default=""),
    Column("created_at", Float, nullable=False, server_default="0"),
    Column("updated_at", Float, nullable=False, server_default="0"),
)
Index("uq_recon_study_uid", recon_study.c.study_uid, unique=True)
Index("ix_recon_study_order", recon_study.c.order_fk)
Index("ix_recon_study_state", recon_study.c.state)

recon_work = Table(
    "recon_work",
    metadata,
    Column("study_uid", String(64), primary_key=True),
    Column("reason", String(32), nullable=False, server_default=""),
    Column("seq", Integer, nullable=False, server_default="1"),
    Column("requested_at", Float, nullable=False, server_default="0"),
)
