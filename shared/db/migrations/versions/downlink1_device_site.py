"""The site a device (modality) is at, for the hub's orders feed to its edges (issue 6 item 3).

Revision ID: downlink1
Revises: labels1
"""

import sqlalchemy as sa
from alembic import op

revision = "downlink1"
down_revision = "labels1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ris_device") as batch:
        batch.add_column(sa.Column("site", sa.String(64), nullable=False, server_default=""))
    op.create_index("ix_ris_device_site", "ris_device", ["site"])


def downgrade() -> None:
    op.drop_index("ix_ris_device_site", "ris_device")
    with op.batch_alter_table("ris_device") as batch:
        batch.drop_column("site")
