"""What stored images must say, from the RIS (RIS-3.8, PACS-6): the coercion for a study.

A study linked to an order takes the order's patient (Patient's Name, Patient ID, Issuer of
Patient ID, Birth Date, Sex), its Accession Number, the referring physician of its visit, and
a Request Attributes Sequence item (accession, requested procedure, scheduled step) when the
modality sent none. A study not linked but filed under a patient the RIS knows takes only the
patient attributes (PIR, RAD-12). A value the RIS does not know (empty) is never written: the
modality's stays.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from mekong.shared.db.ris_schema import ris_order, ris_procedure, ris_sps, ris_visit
from mekong.shared.dicom.coerce import COERCE, CORRECT, Coercion
from mekong.shared.ris.patients import patient_by_row

SYSTEM = "MEKONG"


def patient_values(patient: Any) -> dict[str, str]:
    values = {"PatientName": patient.name, "PatientID": patient.patient_id}
    for keyword, value in (
        ("IssuerOfPatientID", patient.issuer),
        ("PatientBirthDate", patient.birth_date),
        ("PatientSex", patient.sex),
    ):
        if value:
            values[keyword] = value
    return values


def order_coercion(
    conn: Connection, order_fk: int, sps_id: str = "", modality: str = "", source: str = "",
    reason: str = COERCE,
) -> Coercion:  # fmt: skip
    order = conn.execute(select(ris_order).where(ris_order.c.id == order_fk)).one()
    values = patient_values(patient_by_row(conn, order.patient_fk))
    values["AccessionNumber"] = order.accession
    referring = _referring(conn, order.visit_fk)
    if referring:
        values["ReferringPhysicianName"] = referring
    return Coercion(values, _request_item(conn, order, sps_id, modality), reason, SYSTEM, source)


def patient_coercion(patient: Any, source: str = "") -> Coercion:
    """Patient attributes only, as a correction (ADT^A08 / A40 on unlinked studies)."""
    return Coercion(patient_values(patient), {}, CORRECT, SYSTEM, source)


def _referring(conn: Connection, visit_fk: int | None) -> str:
    if visit_fk is None:
        return ""
    query = select(ris_visit.c.referring_physician).where(ris_visit.c.id == visit_fk)
    return conn.execute(query).scalar_one_or_none() or ""


def _request_item(conn: Connection, order: Any, sps_id: str, modality: str) -> dict[str, str]:
    procedure = conn.execute(
        select(ris_procedure).where(ris_procedure.c.order_fk == order.id)
    ).one()
    steps = list(conn.execute(select(ris_sps).where(ris_sps.c.procedure_fk == procedure.id)
                              .order_by(ris_sps.c.id)))  # fmt: skip
    step = next((s for s in steps if s.sps_id == sps_id), None)
    step = step or next((s for s in steps if s.modality == modality), None) or steps[0]
    item = {
        "AccessionNumber": order.accession,
        "RequestedProcedureID": procedure.procedure_id,
        "ScheduledProcedureStepID": step.sps_id,
    }
    if procedure.description:
        item["RequestedProcedureDescription"] = procedure.description
    if step.description:
        item["ScheduledProcedureStepDescription"] = step.description
    return item
