"""What an instance's header says about its order: the keys of the match cascade (RIS-3.8)."""

from __future__ import annotations

from pydicom.dataset import Dataset

from mekong.shared.db.pending import StoredInstance
from mekong.shared.ris.matching import StudyFacts


def study_facts(ds: Dataset, stored: StoredInstance) -> StudyFacts:
    items = list(ds.get("RequestAttributesSequence") or [])
    return StudyFacts(
        study_uid=stored.study_uid,
        accession=_text(ds, "AccessionNumber"),
        patient_id=_text(ds, "PatientID"),
        issuer=_text(ds, "IssuerOfPatientID"),
        modality=_text(ds, "Modality") or stored.modality,
        calling_ae=stored.calling_ae,
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        request_accessions=_each(items, "AccessionNumber"),
        sps_ids=_each(items, "ScheduledProcedureStepID"),
        procedure_ids=_each(items, "RequestedProcedureID"),
        received_at=stored.received_at,
    )


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _each(items: list[Dataset], keyword: str) -> tuple[str, ...]:
    values: list[str] = []
    for item in items:
        value = _text(item, keyword)
        if value and value not in values:
            values.append(value)
    return tuple(values)
