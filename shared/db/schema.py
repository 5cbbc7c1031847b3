"""The index schema (SQLAlchemy Core). Migrations in ``migrations/versions`` create it.

Patient → study → series → instance, with the attributes DIMSE C-FIND and QIDO-RS match and
return, denormalised counters kept by the writer so study-level queries never count rows, and
an accent-folded patient name for fuzzy search (see :mod:`mekong.shared.dicom.names`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

patient = Table(
    "patient",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", String(64), nullable=False),
    Column("issuer", String(64), nullable=False, server_default=""),
    Column("name", Text, nullable=False, server_default=""),
    Column("name_ci", Text, nullable=False, server_default=""),
    Column("name_folded", Text, nullable=False, server_default=""),
    Column("birth_date", String(8), nullable=False, server_default=""),
    Column("sex", String(16), nullable=False, server_default=""),
    UniqueConstraint("patient_id", "issuer", name="uq_patient_id_issuer"),
)
Index("ix_patient_name_ci", patient.c.name_ci)
Index("ix_patient_name_folded", patient.c.name_folded)

study = Table(
    "study",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("study_uid", String(64), nullable=False, unique=True),
    Column("patient_fk", Integer, ForeignKey("patient.id"), nullable=False),
    Column("study_date", String(8), nullable=False, server_default=""),
    Column("study_time", String(16), nullable=False, server_default=""),
    Column("accession", String(64), nullable=False, server_default=""),
    Column("study_id", String(16), nullable=False, server_default=""),
    Column("referring_physician", Text, nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("modalities", String(128), nullable=False, server_default=""),
    Column("charset", String(128), nullable=False, server_default=""),
    Column("num_series", Integer, nullable=False, server_default="0"),
    Column("num_instances", Integer, nullable=False, server_default="0"),
    Column("updated_at", Float, nullable=False, server_default="0"),
)
Index("ix_study_patient", study.c.patient_fk)
Index("ix_study_date", study.c.study_date)
Index("ix_study_accession", study.c.accession)
Index("ix_study_updated", study.c.updated_at)

series = Table(
    "series",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("series_uid", String(64), nullable=False, unique=True),
    Column("study_fk", Integer, ForeignKey("study.id"), nullable=False),
    Column("modality", String(16), nullable=False, server_default=""),
    Column("series_number", String(12), nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("body_part", String(16), nullable=False, server_default=""),
    Column("series_date", String(8), nullable=False, server_default=""),
    Column("series_time", String(16), nullable=False, server_default=""),
    Column("num_instances", Integer, nullable=False, server_default="0"),
)
Index("ix_series_study", series.c.study_fk)
Index("ix_series_modality", series.c.modality)

instance = Table(
    "instance",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sop_uid", String(64), nullable=False, unique=True),
    Column("series_fk", Integer, ForeignKey("series.id"), nullable=False),
    Column("sop_class_uid", String(64), nullable=False),
    Column("instance_number", String(12), nullable=False, server_default=""),
    Column("transfer_syntax", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("num_frames", Integer, nullable=False, server_default="1"),
    Column("rows", Integer, nullable=False, server_default="0"),
    Column("columns", Integer, nullable=False, server_default="0"),
    Column("calling_ae", String(16), nullable=False, server_default=""),
    Column("received_at", Float, nullable=False),
    # 0: not yet seen by the reconciler (new, or replaced by a modality); 1: reconciled
    Column("recon", Integer, nullable=False, server_default="0"),
)
Index("ix_instance_series", instance.c.series_fk)
Index("ix_instance_digest", instance.c.digest)
# Partial: holds only the instances waiting for reconciliation, so it stays small.
Index(
    "ix_instance_recon_pending",
    instance.c.recon,
    sqlite_where=instance.c.recon == 0,
    postgresql_where=instance.c.recon == 0,
)

remote_ae = Table(
    "remote_ae",
    metadata,
    Column("title", String(16), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("allow", String(64), nullable=False),
    Column("fuzzy_find", Boolean, nullable=False, server_default="0"),
    Column("description", Text, nullable=False, server_default=""),
    # MWL answers folded to ASCII, default character set (old modalities; migration mpps1)
    Column("ascii_worklist", Boolean, nullable=False, server_default="0"),
)
