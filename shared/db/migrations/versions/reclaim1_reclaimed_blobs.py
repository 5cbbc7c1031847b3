"""Blobs an edge freed once the hub confirmed them (issue 6 item 4): ``reclaimed_blob``.

Revision ID: reclaim1
Revises: downlink1
"""

import sqlalchemy as sa
from alembic import op

revision = "reclaim1"
down_revision = "downlink1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reclaimed_blob",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("reclaimed_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reclaimed_blob")
