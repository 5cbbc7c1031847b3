"""Non-DICOM originals linked to the DICOM made from them (PACS-5.4).

Revision ID: import1
Revises: recon1
"""

import sqlalchemy as sa
from alembic import op

revision = "import1"
down_revision = "recon1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_original",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sop_uid", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text, nullable=False, server_default=""),
        sa.Column("accession", sa.String(16), nullable=False, server_default=""),
        sa.Column("device", sa.String(64), nullable=False, server_default=""),
        sa.Column("source", sa.String(16), nullable=False, server_default=""),
        sa.Column("imported_at", sa.Float, nullable=False),
    )
    op.create_index("ix_import_original_sop", "import_original", ["sop_uid"])
    op.create_index("ix_import_original_digest", "import_original", ["digest", "accession"])


def downgrade() -> None:
    op.drop_table("import_original")
