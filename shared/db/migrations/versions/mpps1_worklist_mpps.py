"""Modality Worklist and MPPS: worklist indexes, per-AE ASCII worklist, performed steps.

Revision ID: mpps1
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "mpps1"
down_revision = "0003"
branch_labels = None
depends_on = None


def _text(name: str) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=False, server_default="")


def _code(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=False, server_default="")


def _time(name: str) -> sa.Column:
    return sa.Column(name, sa.Float, nullable=False, server_default="0")


def _worklist() -> None:
    with op.batch_alter_table("remote_ae") as batch:
        batch.add_column(
            sa.Column("ascii_worklist", sa.Boolean, nullable=False, server_default="0")
        )
    op.create_index("ix_ris_sps_station", "ris_sps", ["station_ae", "start_date"])
    op.create_index("ix_ris_sps_status", "ris_sps", ["status", "start_date"])
    op.create_index("ix_ris_procedure_id", "ris_procedure", ["procedure_id"])


def _performed_steps() -> None:
    op.create_table(
        "ris_pps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sop_uid", sa.String(64), nullable=False),
        _code("status", 16),
        _code("pps_id", 16),
        _code("station_ae", 16),
        _code("calling_ae", 16),
        _code("modality", 16),
        _code("start_date", 8),
        _code("start_time", 16),
        _code("end_date", 8),
        _code("end_time", 16),
        _text("description"),
        _code("patient_id", 64),
        _text("patient_name"),
        _code("study_uid", 64),
        _code("accession", 16),
        sa.Column("unscheduled", sa.Boolean, nullable=False, server_default="0"),
        _text("link_note"),
        _text("attributes"),
        _time("created_at"),
        _time("updated_at"),
    )
    op.create_index("uq_ris_pps_sop_uid", "ris_pps", ["sop_uid"], unique=True)
    op.create_index("ix_ris_pps_study", "ris_pps", ["study_uid"])
    op.create_index("ix_ris_pps_unscheduled", "ris_pps", ["unscheduled", "created_at"])
    op.create_table(
        "ris_pps_step",
        sa.Column("pps_fk", sa.Integer, sa.ForeignKey("ris_pps.id"), primary_key=True),
        sa.Column("sps_fk", sa.Integer, sa.ForeignKey("ris_sps.id"), primary_key=True),
    )
    op.create_index("ix_ris_pps_step_sps", "ris_pps_step", ["sps_fk"])
    op.create_table(
        "ris_pps_series",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("pps_fk", sa.Integer, sa.ForeignKey("ris_pps.id"), nullable=False),
        _code("series_uid", 64),
        _text("description"),
        _text("protocol"),
        _code("retrieve_ae", 16),
        sa.Column("images", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_ris_pps_series_pps", "ris_pps_series", ["pps_fk"])
    op.create_index("ix_ris_pps_series_uid", "ris_pps_series", ["series_uid"])


def upgrade() -> None:
    _worklist()
    _performed_steps()


def downgrade() -> None:
    for table in ("ris_pps_series", "ris_pps_step", "ris_pps"):
        op.drop_table(table)
    for name, table in (
        ("ix_ris_procedure_id", "ris_procedure"),
        ("ix_ris_sps_status", "ris_sps"),
        ("ix_ris_sps_station", "ris_sps"),
    ):
        op.drop_index(name, table)
    with op.batch_alter_table("remote_ae") as batch:
        batch.drop_column("ascii_worklist")
