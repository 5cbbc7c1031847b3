"""Order status changes an enrolled edge reports to its hub (issue 6 item 2):
``upstream_event``.

Revision ID: upstream1
Revises: uplink2
"""

import sqlalchemy as sa
from alembic import op

revision = "upstream1"
down_revision = "uplink2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("accession", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(8), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("sent_at", sa.Float, nullable=True),
    )
    op.create_index("ix_upstream_event_state", "upstream_event", ["state", "id"])


def downgrade() -> None:
    op.drop_table("upstream_event")
