"""What an instance's header says about its order: the keys of the match cascade (RIS-3.8),
and the QR-label key of a key device (FEAT-5)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydicom.dataset import Dataset

from mekong.shared.config import KeyDeviceConfig
from mekong.shared.db.pending import StoredInstance
from mekong.shared.ris.matching import StudyFacts


def study_facts(
    ds: Dataset, stored: StoredInstance, key_devices: Mapping[str, KeyDeviceConfig] | None = None
) -> StudyFacts:
    """``key_devices``: by calling AE title; a study from one of them carries its label key."""
    items = list(ds.get("RequestAttributesSequence") or [])
    device = (key_devices or {}).get(stored.calling_ae.strip())
    label: dict[str, str] = {}
    if device is not None:
        where = f"{device.attribute} from {device.ae_title}"
        label = {"label_key": label_key(ds, items, device), "label_where": where,
                 "label_attribute": device.attribute}  # fmt: skip
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
        **label,
    )


def label_key(ds: Dataset, items: list[Dataset], device: KeyDeviceConfig) -> str:
    """The key a key device's attribute carries: the regex's group ``key`` (or group 1, or the
    whole match) when a regex is set, else the whole value; "" when there is none."""
    value = _text(ds, device.attribute)
    if not value and device.attribute == "RequestedProcedureID":
        value = next(iter(_each(items, "RequestedProcedureID")), "")
    if not device.regex:
        return value
    found = re.search(device.regex, value)
    if found is None:
        return ""
    if "key" in found.re.groupindex:
        return found.group("key") or ""
    return (found.group(1) if found.re.groups else found.group(0)) or ""


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
