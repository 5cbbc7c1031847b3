"""Archive core: patient, study, series, instance, remote AE table.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _text(name: str) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=False, server_default="")


def _code(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=False, server_default="")


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer, nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "patient",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        _code("issuer", 64),
        _text("name"),
        _text("name_ci"),
        _text("name_folded"),
        _code("birth_date", 8),
        _code("sex", 16),
        sa.UniqueConstraint("patient_id", "issuer", name="uq_patient_id_issuer"),
    )
    op.create_index("ix_patient_name_ci", "patient", ["name_ci"])
    op.create_index("ix_patient_name_folded", "patient", ["name_folded"])

    op.create_table(
        "study",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("patient_fk", sa.Integer, sa.ForeignKey("patient.id"), nullable=False),
        _code("study_date", 8),
        _code("study_time", 16),
        _code("accession", 64),
        _code("study_id", 16),
        _text("referring_physician"),
        _text("description"),
        _code("modalities", 128),
        _code("charset", 128),
        _count("num_series"),
        _count("num_instances"),
        sa.Column("updated_at", sa.Float, nullable=False, server_default="0"),
    )
    op.create_index("ix_study_patient", "study", ["patient_fk"])
    op.create_index("ix_study_date", "study", ["study_date"])
    op.create_index("ix_study_accession", "study", ["accession"])
    op.create_index("ix_study_updated", "study", ["updated_at"])

    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("series_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("study_fk", sa.Integer, sa.ForeignKey("study.id"), nullable=False),
        _code("modality", 16),
        _code("series_number", 12),
        _text("description"),
        _code("body_part", 16),
        _code("series_date", 8),
        _code("series_time", 16),
        _count("num_instances"),
    )
    op.create_index("ix_series_study", "series", ["study_fk"])
    op.create_index("ix_series_modality", "series", ["modality"])

    op.create_table(
        "instance",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sop_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("series_fk", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
        sa.Column("sop_class_uid", sa.String(64), nullable=False),
        _code("instance_number", 12),
        sa.Column("transfer_syntax", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("num_frames", sa.Integer, nullable=False, server_default="1"),
        _count("rows"),
        _count("columns"),
        _code("calling_ae", 16),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index("ix_instance_series", "instance", ["series_fk"])
    op.create_index("ix_instance_digest", "instance", ["digest"])

    op.create_table(
        "remote_ae",
        sa.Column("title", sa.String(16), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("allow", sa.String(64), nullable=False),
        sa.Column("fuzzy_find", sa.Boolean, nullable=False, server_default="0"),
        _text("description"),
    )


def downgrade() -> None:
    for table in ("remote_ae", "instance", "series", "study", "patient"):
        op.drop_table(table)
