"""Reconciliation of stored studies with orders, and the outbound HL7 outbox.

``instance.recon`` marks instances the reconciler has not seen (partial index); instances
already stored when this migration runs are marked seen: an upgrade does not rewrite the
existing archive. ``recon_study``, ``recon_work``, ``hl7_destination``, ``hl7_outbox``, and
an index of ``uplink_outbox`` by instance.

Revision ID: recon1
Revises: mpps1
"""

import sqlalchemy as sa
from alembic import op

revision = "recon1"
down_revision = "mpps1"
branch_labels = None
depends_on = None


def _text(name: str) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=False, server_default="")


def _code(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=False, server_default="")


def _time(name: str) -> sa.Column:
    return sa.Column(name, sa.Float, nullable=False, server_default="0")


def _instance_flag() -> None:
    op.add_column("instance", sa.Column("recon", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE instance SET recon = 1")
    op.create_index(
        "ix_instance_recon_pending",
        "instance",
        ["recon"],
        sqlite_where=sa.text("recon = 0"),
        postgresql_where=sa.text("recon = 0"),
    )


def _recon_tables() -> None:
    op.create_table(
        "recon_study",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("order_fk", sa.Integer, sa.ForeignKey("ris_order.id"), nullable=True),
        _code("matched_by", 32),
        _code("reason_code", 32),
        _text("reason"),
        sa.Column("suggested_order_fk", sa.Integer, sa.ForeignKey("ris_order.id"), nullable=True),
        _text("started_steps"),
        _code("linked_by", 128),
        _time("created_at"),
        _time("updated_at"),
    )
    op.create_index("uq_recon_study_uid", "recon_study", ["study_uid"], unique=True)
    op.create_index("ix_recon_study_order", "recon_study", ["order_fk"])
    op.create_index("ix_recon_study_state", "recon_study", ["state"])
    op.create_table(
        "recon_work",
        sa.Column("study_uid", sa.String(64), primary_key=True),
        _code("reason", 32),
        sa.Column("seq", sa.Integer, nullable=False, server_default="1"),
        _time("requested_at"),
    )


def _outbox_tables() -> None:
    op.create_table(
        "hl7_destination",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("message_type", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default="1"),
        _code("receiving_application", 128),
        _code("receiving_facility", 128),
        _code("sending_facility", 128),
        _text("viewer_url"),
        _time("updated_at"),
    )
    op.create_table(
        "hl7_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("control_id", sa.String(20), nullable=False),
        sa.Column("message_type", sa.String(16), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        _code("accession", 16),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _time("next_attempt_at"),
        _text("last_error"),
        _text("ack"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("sent_at", sa.Float, nullable=True),
    )
    op.create_index("uq_hl7_outbox_control_id", "hl7_outbox", ["control_id"], unique=True)
    op.create_index("ix_hl7_outbox_queue", "hl7_outbox", ["destination", "state", "id"])
    op.create_index("ix_hl7_outbox_state", "hl7_outbox", ["state", "id"])
    op.create_index("ix_hl7_outbox_accession", "hl7_outbox", ["accession"])


def upgrade() -> None:
    _instance_flag()
    _recon_tables()
    _outbox_tables()
    # a rewritten instance's uplink rows are found by instance (0003 indexes destination first)
    op.create_index("ix_uplink_outbox_instance", "uplink_outbox", ["instance_fk"])


def downgrade() -> None:
    op.drop_index("ix_uplink_outbox_instance", "uplink_outbox")
    for table in ("hl7_outbox", "hl7_destination", "recon_work", "recon_study"):
        op.drop_table(table)
    op.drop_index("ix_instance_recon_pending", "instance")
    with op.batch_alter_table("instance") as batch:
        batch.drop_column("recon")
