"""RIS: patients, visits, orders, procedures, scheduled steps, master files, HL7 message log.

Revision ID: 0002
Revises: auth1
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "auth1"
branch_labels = None
depends_on = None


def _text(name: str) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=False, server_default="")


def _code(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=False, server_default="")


def _time(name: str) -> sa.Column:
    return sa.Column(name, sa.Float, nullable=False, server_default="0")


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer, primary_key=True)


def _fk(name: str, target: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Integer, sa.ForeignKey(target), nullable=nullable)


def _patients_and_orders() -> None:
    op.create_table(
        "ris_patient",
        _id(),
        sa.Column("patient_id", sa.String(64), nullable=False),
        _code("issuer", 64),
        _text("name"),
        _text("name_folded"),
        _code("birth_date", 8),
        _code("sex", 1),
        _text("address"),
        _code("phone", 64),
        _fk("merged_into", "ris_patient.id", nullable=True),
        _time("created_at"),
        _time("updated_at"),
    )
    op.create_index(
        "uq_ris_patient_id_issuer", "ris_patient", ["patient_id", "issuer"], unique=True
    )
    op.create_index("ix_ris_patient_name_folded", "ris_patient", ["name_folded"])
    op.create_table(
        "ris_visit",
        _id(),
        _fk("patient_fk", "ris_patient.id"),
        _code("visit_number", 64),
        _code("patient_class", 1),
        _code("location", 128),
        _code("department", 64),
        _text("referring_physician"),
        _time("updated_at"),
    )
    op.create_index("ix_ris_visit_patient", "ris_visit", ["patient_fk", "visit_number"])
    op.create_table(
        "ris_order",
        _id(),
        sa.Column("accession", sa.String(16), nullable=False),
        _code("placer_number", 64),
        _code("filler_number", 64),
        _fk("patient_fk", "ris_patient.id"),
        _fk("visit_fk", "ris_visit.id", nullable=True),
        _code("priority", 8),
        _text("ordering_physician"),
        _text("reason"),
        _code("status", 16),
        _code("source", 128),
        _time("created_at"),
        _time("updated_at"),
    )
    op.create_index("uq_ris_order_accession", "ris_order", ["accession"], unique=True)
    op.create_index("ix_ris_order_placer", "ris_order", ["placer_number", "source"])
    op.create_index("ix_ris_order_filler", "ris_order", ["filler_number"])
    op.create_index("ix_ris_order_patient", "ris_order", ["patient_fk"])
    op.create_index("ix_ris_order_status", "ris_order", ["status"])
    op.create_table(
        "ris_procedure",
        _id(),
        _fk("order_fk", "ris_order.id"),
        _code("procedure_id", 16),
        _code("service_code", 64),
        _text("description"),
        _code("study_uid", 64),
    )
    op.create_index("ix_ris_procedure_order", "ris_procedure", ["order_fk"])
    op.create_index("ix_ris_procedure_study", "ris_procedure", ["study_uid"])
    op.create_table(
        "ris_sps",
        _id(),
        _fk("procedure_fk", "ris_procedure.id"),
        sa.Column("sps_id", sa.String(16), nullable=False),
        _code("station_ae", 16),
        _code("modality", 16),
        _code("start_date", 8),
        _code("start_time", 6),
        _code("room", 64),
        _text("performing_physician"),
        _text("description"),
        _code("status", 16),
        _time("updated_at"),
    )
    op.create_index("uq_ris_sps_id", "ris_sps", ["sps_id"], unique=True)
    op.create_index("ix_ris_sps_procedure", "ris_sps", ["procedure_fk"])
    op.create_index("ix_ris_sps_worklist", "ris_sps", ["start_date", "modality", "station_ae"])


def _master_files() -> None:
    op.create_table(
        "ris_service",
        sa.Column("code", sa.String(64), primary_key=True),
        _text("name"),
        _code("modality", 16),
        _code("body_part", 16),
        sa.Column("bhyt_min_minutes", sa.Integer, nullable=True),
        _time("updated_at"),
    )
    op.create_table(
        "ris_department",
        sa.Column("code", sa.String(64), primary_key=True),
        _text("name"),
        _time("updated_at"),
    )
    op.create_table(
        "ris_room",
        sa.Column("code", sa.String(64), primary_key=True),
        _text("name"),
        _code("department", 64),
        _time("updated_at"),
    )
    op.create_table(
        "ris_device",
        sa.Column("ae_title", sa.String(16), primary_key=True),
        _text("name"),
        _code("modality", 16),
        _code("room", 64),
        _time("updated_at"),
    )
    op.create_table(
        "ris_staff",
        sa.Column("code", sa.String(64), primary_key=True),
        _text("name"),
        _text("name_folded"),
        _code("role", 32),
        _code("department", 64),
        _time("updated_at"),
    )


def _message_log() -> None:
    op.create_table(
        "hl7_message",
        _id(),
        _code("control_id", 64),
        _code("sending_app", 128),
        _code("sending_facility", 128),
        _code("message_type", 16),
        _code("version", 16),
        _code("charset", 32),
        sa.Column("received_at", sa.Float, nullable=False),
        _text("raw"),
        _code("outcome", 2),
        _code("error_code", 8),
        _text("error_text"),
        _text("changes"),
        _text("ack"),
        _fk("duplicate_of", "hl7_message.id", nullable=True),
    )
    op.create_index(
        "ix_hl7_message_sender",
        "hl7_message",
        ["sending_app", "sending_facility", "control_id"],
    )
    op.create_index("ix_hl7_message_received", "hl7_message", ["received_at"])


def upgrade() -> None:
    _patients_and_orders()
    _master_files()
    _message_log()


def downgrade() -> None:
    for table in (
        "hl7_message",
        "ris_staff",
        "ris_device",
        "ris_room",
        "ris_department",
        "ris_service",
        "ris_sps",
        "ris_procedure",
        "ris_order",
        "ris_visit",
        "ris_patient",
    ):
        op.drop_table(table)
