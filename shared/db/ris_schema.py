"""RIS tables (SQLAlchemy Core), on the same ``metadata`` as the archive schema.

Patient identity as the HIS knows it, visits, orders with their requested procedure and
scheduled procedure steps (RIS-3, RIS-5.2, RIS-6.1), the master files a HIS synchronises
(services, departments, rooms, devices, staff: RIS-9.6) and the log of every inbound HL7
message with its outcome (PACS-16.5). Migration ``0002_ris`` creates them.

Text columns keep what was received, byte for byte (UTF-8); ``name_folded`` is the
accent-folded search form from :mod:`mekong.shared.dicom.names`. Times are POSIX seconds.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from mekong.shared.db.schema import metadata


def _text(name: str) -> Column:
    return Column(name, Text, nullable=False, server_default="")


def _code(name: str, length: int) -> Column:
    return Column(name, String(length), nullable=False, server_default="")


def _time(name: str) -> Column:
    return Column(name, Float, nullable=False, server_default="0")


ris_patient = Table(
    "ris_patient",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", String(64), nullable=False),
    _code("issuer", 64),
    _text("name"),
    _text("name_folded"),
    _code("birth_date", 8),
    _code("sex", 1),
    _text("address"),
    _code("phone", 64),
    Column("merged_into", Integer, ForeignKey("ris_patient.id"), nullable=True),
    _time("created_at"),
    _time("updated_at"),
)
Index("uq_ris_patient_id_issuer", ris_patient.c.patient_id, ris_patient.c.issuer, unique=True)
Index("ix_ris_patient_name_folded", ris_patient.c.name_folded)

ris_visit = Table(
    "ris_visit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_fk", Integer, ForeignKey("ris_patient.id"), nullable=False),
    _code("visit_number", 64),
    _code("patient_class", 1),
    _code("location", 128),
    _code("department", 64),
    _text("referring_physician"),
    _time("updated_at"),
)
Index("ix_ris_visit_patient", ris_visit.c.patient_fk, ris_visit.c.visit_number)

ris_order = Table(
    "ris_order",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("accession", String(16), nullable=False),
    _code("placer_number", 64),
    _code("filler_number", 64),
    Column("patient_fk", Integer, ForeignKey("ris_patient.id"), nullable=False),
    Column("visit_fk", Integer, ForeignKey("ris_visit.id"), nullable=True),
    _code("priority", 8),
    _text("ordering_physician"),
    _text("reason"),
    _code("status", 16),
    _code("source", 128),
    _time("created_at"),
    _time("updated_at"),
)
Index("uq_ris_order_accession", ris_order.c.accession, unique=True)
Index("ix_ris_order_placer", ris_order.c.placer_number, ris_order.c.source)
Index("ix_ris_order_filler", ris_order.c.filler_number)
Index("ix_ris_order_patient", ris_order.c.patient_fk)
Index("ix_ris_order_status", ris_order.c.status)

ris_procedure = Table(
    "ris_procedure",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_fk", Integer, ForeignKey("ris_order.id"), nullable=False),
    _code("procedure_id", 16),
    _code("service_code", 64),
    _text("description"),
    _code("study_uid", 64),
)
Index("ix_ris_procedure_order", ris_procedure.c.order_fk)
Index("ix_ris_procedure_study", ris_procedure.c.study_uid)

ris_sps = Table(
    "ris_sps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("procedure_fk", Integer, ForeignKey("ris_procedure.id"), nullable=False),
    Column("sps_id", String(16), nullable=False),
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
Index("uq_ris_sps_id", ris_sps.c.sps_id, unique=True)
Index("ix_ris_sps_procedure", ris_sps.c.procedure_fk)
Index("ix_ris_sps_worklist", ris_sps.c.start_date, ris_sps.c.modality, ris_sps.c.station_ae)
Index("ix_ris_sps_station", ris_sps.c.station_ae, ris_sps.c.start_date)  # MWL (mpps1)
Index("ix_ris_sps_status", ris_sps.c.status, ris_sps.c.start_date)  # MWL (mpps1)
Index("ix_ris_procedure_id", ris_procedure.c.procedure_id)  # MWL (mpps1)

# Modality Performed Procedure Steps (RIS-5.3, RIS-5.4; migration mpps1). ``attributes`` is
# the PPS as last set (DICOM JSON); the columns are what the RIS reads. ``unscheduled``: no
# scheduled step matched the Scheduled Step Attributes Sequence (``link_note`` says why).
ris_pps = Table(
    "ris_pps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sop_uid", String(64), nullable=False),
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
    Column("unscheduled", Boolean, nullable=False, server_default="0"),
    _text("link_note"),
    _text("attributes"),
    _time("created_at"),
    _time("updated_at"),
)
Index("uq_ris_pps_sop_uid", ris_pps.c.sop_uid, unique=True)
Index("ix_ris_pps_study", ris_pps.c.study_uid)
Index("ix_ris_pps_unscheduled", ris_pps.c.unscheduled, ris_pps.c.created_at)

ris_pps_step = Table(  # which scheduled steps a PPS performs (several: IHE group case)
    "ris_pps_step",
    metadata,
    Column("pps_fk", Integer, ForeignKey("ris_pps.id"), primary_key=True),
    Column("sps_fk", Integer, ForeignKey("ris_sps.id"), primary_key=True),
)
Index("ix_ris_pps_step_sps", ris_pps_step.c.sps_fk)

ris_pps_series = Table(  # the Performed Series Sequence, one row per series
    "ris_pps_series",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("pps_fk", Integer, ForeignKey("ris_pps.id"), nullable=False),
    _code("series_uid", 64),
    _text("description"),
    _text("protocol"),
    _code("retrieve_ae", 16),
    Column("images", Integer, nullable=False, server_default="0"),
)
Index("ix_ris_pps_series_pps", ris_pps_series.c.pps_fk)
Index("ix_ris_pps_series_uid", ris_pps_series.c.series_uid)

ris_service = Table(
    "ris_service",
    metadata,
    Column("code", String(64), primary_key=True),
    _text("name"),
    _code("modality", 16),
    _code("body_part", 16),
    Column("bhyt_min_minutes", Integer, nullable=True),
    _time("updated_at"),
)

ris_department = Table(
    "ris_department",
    metadata,
    Column("code", String(64), primary_key=True),
    _text("name"),
    _time("updated_at"),
)

ris_room = Table(
    "ris_room",
    metadata,
    Column("code", String(64), primary_key=True),
    _text("name"),
    _code("department", 64),
    _time("updated_at"),
)

ris_device = Table(
    "ris_device",
    metadata,
    Column("ae_title", String(16), primary_key=True),
    _text("name"),
    _code("modality", 16),
    _code("room", 64),
    _code("site", 64),  # the hub site (edge) the device is at; "" = here (downlink1)
    _time("updated_at"),
)
Index("ix_ris_device_site", ris_device.c.site)

ris_staff = Table(
    "ris_staff",
    metadata,
    Column("code", String(64), primary_key=True),
    _text("name"),
    _text("name_folded"),
    _code("role", 32),
    _code("department", 64),
    _time("updated_at"),
)

hl7_message = Table(
    "hl7_message",
    metadata,
    Column("id", Integer, primary_key=True),
    _code("control_id", 64),
    _code("sending_app", 128),
    _code("sending_facility", 128),
    _code("message_type", 16),
    _code("version", 16),
    _code("charset", 32),
    Column("received_at", Float, nullable=False),
    _text("raw"),
    _code("outcome", 2),
    _code("error_code", 8),
    _text("error_text"),
    _text("changes"),
    _text("ack"),
    Column("duplicate_of", Integer, ForeignKey("hl7_message.id"), nullable=True),
)
Index(
    "ix_hl7_message_sender",
    hl7_message.c.sending_app,
    hl7_message.c.sending_facility,
    hl7_message.c.control_id,
)
Index("ix_hl7_message_received", hl7_message.c.received_at)

# Reconciliation and outbound HL7 tables live in their own modules; importing them here puts
# them on ``metadata`` wherever the RIS schema is loaded (migrations, tests).
from mekong.shared.db import outbox_schema, recon_schema  # noqa: E402, F401

# QR-label keys (FEAT-5, RIS-3.3; migration ``labels1``): one short key per order, issued when
# its first label is printed and never changed; ``seen_patient_id`` is the Patient ID the
# modality sent with the first study the key mapped (a later study of another ID is refused).
ris_label = Table(
    "ris_label",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(16), nullable=False),
    Column("order_fk", Integer, ForeignKey("ris_order.id"), nullable=False),
    _code("seen_patient_id", 64),
    _time("created_at"),
    _time("used_at"),
)
Index("uq_ris_label_key", ris_label.c.key, unique=True)
Index("uq_ris_label_order", ris_label.c.order_fk, unique=True)
