"""Uplink outbox: the resumable upload of a large object in progress (issue 6, PACS-19).

Revision ID: uplink2
Revises: reclaim1
"""

import sqlalchemy as sa
from alembic import op

revision = "uplink2"
down_revision = "reclaim1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "uplink_outbox", sa.Column("upload_id", sa.String(64), nullable=False, server_default="")
    )
    op.add_column(
        "uplink_outbox",
        sa.Column("upload_offset", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("uplink_outbox") as batch:
        batch.drop_column("upload_offset")
        batch.drop_column("upload_id")
