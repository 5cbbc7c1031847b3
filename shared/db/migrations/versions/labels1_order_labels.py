"""QR-label keys of orders (FEAT-5, RIS-3.3): ``ris_label``.

Revision ID: labels1
Revises: hub1
"""

import sqlalchemy as sa
from alembic import op

revision = "labels1"
down_revision = "hub1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ris_label",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(16), nullable=False),
        sa.Column("order_fk", sa.Integer, sa.ForeignKey("ris_order.id"), nullable=False),
        sa.Column("seen_patient_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False, server_default="0"),
        sa.Column("used_at", sa.Float, nullable=False, server_default="0"),
    )
    op.create_index("uq_ris_label_key", "ris_label", ["key"], unique=True)
    op.create_index("uq_ris_label_order", "ris_label", ["order_fk"], unique=True)


def downgrade() -> None:
    op.drop_table("ris_label")
