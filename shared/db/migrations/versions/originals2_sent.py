"""Non-DICOM originals an enrolled edge delivered to its hub (issue 6 item 2):
``original_sent``.

Revision ID: originals2
Revises: upstream1
"""

import sqlalchemy as sa
from alembic import op

revision = "originals2"
down_revision = "upstream1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "original_sent",
        sa.Column("original_fk", sa.Integer, primary_key=True),
        sa.Column("sent_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("original_sent")
