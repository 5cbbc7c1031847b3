"""Hub site registry: sites, enrollment tokens, studies per site (issue 6).

Revision ID: hub1
Revises: import1
"""

import sqlalchemy as sa
from alembic import op

revision = "hub1"
down_revision = "import1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_site",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("enrolled_at", sa.Float, nullable=True),
        sa.Column("cert_serial", sa.String(64), nullable=False, server_default=""),
        sa.Column("cert_not_after", sa.Float, nullable=True),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("last_seen_at", sa.Float, nullable=True),
        sa.Column("last_address", sa.String(64), nullable=False, server_default=""),
        sa.Column("report_at", sa.Float, nullable=True),
        sa.Column("report", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_hub_site_serial", "hub_site", ["cert_serial"])
    op.create_table(
        "hub_enrollment",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "site_fk",
            sa.Integer,
            sa.ForeignKey("hub_site.id", ondelete="CASCADE"),
            nullable=False,
        ),  # fmt: skip
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float, nullable=True),
    )
    op.create_table(
        "hub_site_study",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "site_fk",
            sa.Integer,
            sa.ForeignKey("hub_site.id", ondelete="CASCADE"),
            nullable=False,
        ),  # fmt: skip
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("instances", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_at", sa.Float, nullable=False),
        sa.Column("last_at", sa.Float, nullable=False),
    )
    op.create_index("ix_hub_site_study", "hub_site_study", ["site_fk", "study_uid"], unique=True)


def downgrade() -> None:
    op.drop_table("hub_site_study")
    op.drop_table("hub_enrollment")
    op.drop_table("hub_site")
