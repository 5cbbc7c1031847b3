"""Accounts that sign in through the hospital directory (issue 7, PACS-4.6):
``app_user.directory``.

Revision ID: ldap1
Revises: originals2
"""

import sqlalchemy as sa
from alembic import op

revision = "ldap1"
down_revision = "originals2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ALTER TABLE … ADD COLUMN: no table copy, so sessions and password history stay untouched
    op.add_column(
        "app_user", sa.Column("directory", sa.Boolean, nullable=False, server_default="0")
    )


def downgrade() -> None:
    op.drop_column("app_user", "directory")
