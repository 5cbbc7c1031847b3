"""The order a captured or imported object belongs to, looked up by accession (RIS-5.5).

Capture and import never invent patient or study data: every object carries the order's
patient, Study Instance UID, accession and request attributes (IHE SWF), read from the RIS
tables on the RIS thread (``Index.reading``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mekong.shared.db.index import Index
from mekong.shared.ris import orders
from mekong.shared.ris.errors import DomainError
from mekong.shared.ris.status import FINAL


class UnknownOrder(LookupError):
    """No order has this accession (or the accession is unusable); a 4xx for callers."""


@dataclass(frozen=True)
class OrderContext:
    accession: str
    patient_id: str
    issuer: str
    patient_name: str
    birth_date: str
    sex: str
    study_uid: str
    procedure_id: str
    procedure_description: str
    sps_id: str
    sps_description: str
    referring_physician: str
    modality: str


async def order_context(index: Index, accession: str, modality: str = "") -> OrderContext:
    """The order with ``accession``; its step of ``modality`` when it has several."""
    accession = accession.strip()
    if not accession:
        raise UnknownOrder("an accession number is required")
    try:
        found = await index.reading(lambda conn: orders.get_order(conn, accession))
    except DomainError:
        raise UnknownOrder(f"no order with accession {accession!r}") from None
    return context_from(found, modality)


def context_from(order: dict[str, Any], modality: str = "") -> OrderContext:
    patient, procedure = order["patient"], order["procedure"]
    step = _step(order["steps"], modality)
    visit = order.get("visit") or {}
    return OrderContext(
        accession=order["accession"],
        patient_id=patient["id"],
        issuer=patient.get("issuer") or "",
        patient_name=patient.get("name") or "",
        birth_date=patient.get("birth_date") or "",
        sex=_dicom_sex(patient.get("sex") or ""),
        study_uid=procedure["study_uid"],
        procedure_id=procedure.get("id") or "",
        procedure_description=procedure.get("description") or "",
        sps_id=step.get("sps_id", ""),
        sps_description=step.get("description", ""),
        referring_physician=visit.get("referring_physician") or "",
        modality=step.get("modality", ""),
    )


def _step(steps: list[dict[str, str]], modality: str) -> dict[str, str]:
    """The open step of this modality, else any step of it, else the first open one."""

    def is_open(step: dict[str, str]) -> bool:
        return step.get("status", "") not in FINAL

    def same(step: dict[str, str]) -> bool:
        return bool(modality) and step.get("modality") == modality

    for wanted in (lambda s: same(s) and is_open(s), same, is_open):
        match = next((step for step in steps if wanted(step)), None)
        if match is not None:
            return match
    return steps[0] if steps else {}


def _dicom_sex(hl7_sex: str) -> str:
    """HL7 table 0001 → DICOM (M, F, O; empty when unknown)."""
    return {"M": "M", "F": "F", "O": "O", "A": "O", "N": "O"}.get(hl7_sex.upper(), "")
