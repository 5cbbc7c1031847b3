"""The waiting list (RIS-3.5, RIS-4.1, RIS-4.2): orders not yet done, filtered by room,
patient type (visit class I/O/E), modality, date, status, patient name (accent-folded word
prefixes), patient ID and accession; most urgent first (STAT, HIGH, ...), then by arrival."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Select, and_, case, select

from mekong.shared.db.ris_schema import ris_order, ris_patient, ris_procedure, ris_sps, ris_visit
from mekong.shared.dicom.names import fuzzy_tokens
from mekong.shared.ris.orders import PRIORITIES, orders_json
from mekong.shared.ris.status import Status

WAITING = (Status.SCHEDULED, Status.ARRIVED, Status.IN_PROGRESS)
_RANK = case({p: n for n, p in enumerate(PRIORITIES)}, value=ris_order.c.priority, else_=2)


@dataclass(frozen=True)
class Filters:
    room: str = ""
    patient_class: str = ""
    modality: str = ""
    date: str = ""  # YYYYMMDD, a step's start date
    status: str = ""  # one of WAITING, "" for all three
    name: str = ""
    patient_id: str = ""
    accession: str = ""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def waiting_orders(conn: Connection, filters: Filters, limit: int = 200) -> list[dict[str, Any]]:
    query = _filtered(select(ris_order), filters)
    query = query.order_by(_RANK, ris_order.c.created_at, ris_order.c.id).limit(limit)
    return orders_json(conn, conn.execute(query).all())


def _filtered(query: Select, f: Filters) -> Select:
    statuses = [f.status] if f.status in WAITING else list(WAITING)
    query = query.where(ris_order.c.status.in_(statuses))
    if f.accession:
        query = query.where(ris_order.c.accession == f.accession)
    if f.patient_id or f.name:
        query = query.where(ris_order.c.patient_fk.in_(_patients(f)))
    if f.patient_class:
        visits = select(ris_visit.c.id).where(ris_visit.c.patient_class == f.patient_class)
        query = query.where(ris_order.c.visit_fk.in_(visits))
    step_conditions = [
        column == value
        for column, value in (
            (ris_sps.c.room, f.room),
            (ris_sps.c.modality, f.modality),
            (ris_sps.c.start_date, f.date),
        )  # fmt: skip
        if value
    ]
    if step_conditions:  # one list of orders, not a sub-query per order (1 s at 3 000 orders)
        query = query.where(ris_order.c.id.in_(
            select(ris_procedure.c.order_fk)
            .join(ris_sps, ris_sps.c.procedure_fk == ris_procedure.c.id)
            .where(*step_conditions)
        ))  # fmt: skip
    return query


def _patients(f: Filters) -> Select:
    query = select(ris_patient.c.id)
    if f.patient_id:
        query = query.where(ris_patient.c.patient_id == f.patient_id)
    tokens = fuzzy_tokens(f.name)
    if tokens:
        query = query.where(and_(*[ris_patient.c.name_folded.contains(f" {t}") for t in tokens]))
    return query
