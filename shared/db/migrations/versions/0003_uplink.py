"""Uplink outbox: instances an edge must deliver to its hub (or another DICOMweb PACS).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uplink_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("instance_fk", sa.Integer, nullable=False),
        sa.Column("sop_uid", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(8), nullable=False, server_default="queued"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("verified", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("sent_at", sa.Float, nullable=True),
        sa.UniqueConstraint("destination", "instance_fk", name="uq_uplink_destination_instance"),
    )
    op.create_index(
        "ix_uplink_pending", "uplink_outbox", ["destination", "state", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_uplink_pending", table_name="uplink_outbox")
    op.drop_table("uplink_outbox")
