"""Archive queries of the reconciler (RIS-3.8): instances not yet reconciled, the instances of
a study."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, literal_column, select

from mekong.shared.db import schema as t
from mekong.shared.db.ris_schema import ris_order


@dataclass(frozen=True)
class StoredInstance:
    sop_uid: str
    digest: str
    calling_ae: str
    study_uid: str
    modality: str
    patient_id: str
    issuer: str
    received_at: float


_COLUMNS = (
    t.instance.c.sop_uid, t.instance.c.digest, t.instance.c.calling_ae, t.study.c.study_uid,
    t.series.c.modality, t.patient.c.patient_id, t.patient.c.issuer, t.instance.c.received_at,
)  # fmt: skip


def _joined():  # type: ignore[no-untyped-def]
    return (
        select(*_COLUMNS)
        .join(t.series, t.series.c.id == t.instance.c.series_fk)
        .join(t.study, t.study.c.id == t.series.c.study_fk)
        .join(t.patient, t.patient.c.id == t.study.c.patient_fk)
    )


@dataclass(frozen=True)
class PendingStudy:
    study_uid: str
    count: int  # instances not yet reconciled
    updated_at: float  # when the study last received an instance


def pending_studies(conn: Connection, limit: int = 500) -> list[PendingStudy]:
    """Studies with instances the reconciler has not seen, oldest first (a scan of the
    partial index, which holds only those instances)."""
    query = (
        select(t.study.c.study_uid, func.count(), func.max(t.study.c.updated_at))
        .select_from(t.instance)
        .join(t.series, t.series.c.id == t.instance.c.series_fk)
        .join(t.study, t.study.c.id == t.series.c.study_fk)
        .where(t.instance.c.recon == literal_column("0"))
        .group_by(t.study.c.study_uid)
        .order_by(func.min(t.instance.c.id))
        .limit(limit)
    )
    return [PendingStudy(uid, int(n), float(at or 0)) for uid, n, at in conn.execute(query)]


def pending_of_study(conn: Connection, study_uid: str, limit: int) -> list[StoredInstance]:
    query = _joined().where(
        t.instance.c.recon == literal_column("0"), t.study.c.study_uid == study_uid
    )
    rows = conn.execute(query.order_by(t.instance.c.id).limit(limit))
    return [StoredInstance(*row) for row in rows]


def study_instances(conn: Connection, study_uid: str) -> list[StoredInstance]:
    query = _joined().where(t.study.c.study_uid == study_uid).order_by(t.instance.c.id)
    return [StoredInstance(*row) for row in conn.execute(query)]


def first_instance(conn: Connection, study_uid: str) -> StoredInstance | None:
    query = _joined().where(t.study.c.study_uid == study_uid).order_by(t.instance.c.id)
    row = conn.execute(query.limit(1)).first()
    return StoredInstance(*row) if row else None


def orders_version(conn: Connection) -> float:
    """Changes when an order is created or changed (re-match the unmatched studies then)."""
    value = conn.execute(select(func.max(ris_order.c.updated_at))).scalar_one_or_none()
    return float(value or 0)
