"""PID / PV1 / MRG → RIS patient and visit data.

PID-5 ``family^given^middle^suffix^prefix`` becomes the DICOM PN
``Family^Given^Middle^Prefix^Suffix``. A whole name in PID-5.1 alone (``Nguyễn Thị Hồng Nhung``,
common from Vietnamese HIS) is split at the first space: family name ``Nguyễn``, given
``Thị Hồng Nhung``. Text is kept exactly as decoded (no Unicode normalisation).
"""

from __future__ import annotations

from mekong.shared.hl7.errors import Hl7Error
from mekong.shared.hl7.message import Message
from mekong.shared.ris.model import PatientData, VisitData


def patient(msg: Message, occurrence: int = 1) -> PatientData:
    patient_id, issuer = identifier(msg, occurrence)
    return PatientData(
        patient_id=patient_id,
        issuer=issuer,
        name=person_name(msg, "PID", 5, occurrence),
        birth_date=msg.optional("PID", 7, occurrence=occurrence),
        sex=msg.optional("PID", 8, occurrence=occurrence),
        address=_address(msg, occurrence),
        phone=msg.optional("PID", 13, occurrence=occurrence),
    )


def identifier(msg: Message, occurrence: int = 1) -> tuple[str, str]:
    """PID-3: the first repetition with an ID (component 1), with its issuer (component 4)."""
    for repeat in range(1, max(msg.repeats("PID", 3, occurrence), 1) + 1):
        value = msg.get("PID", 3, 1, repeat, occurrence)
        if value.strip():
            return value.strip(), msg.get("PID", 3, 4, repeat, occurrence).strip()
    raise Hl7Error("AE", "101", "PID-3 (patient identifier) is required", "PID-3",
                   "REQUIRED_FIELD_MISSING")  # fmt: skip


def prior_identifier(msg: Message, occurrence: int = 1) -> PatientData:
    """MRG-1 (prior patient identifier) of an A40 merge."""
    value = msg.get("MRG", 1, 1, occurrence=occurrence).strip()
    if not value:
        raise Hl7Error("AE", "101", "MRG-1 (prior patient identifier) is required", "MRG-1",
                       "REQUIRED_FIELD_MISSING")  # fmt: skip
    return PatientData(value, msg.get("MRG", 1, 4, occurrence=occurrence).strip())


def person_name(msg: Message, segment: str, field: int, occurrence: int = 1) -> str | None:
    """An XPN field as a DICOM PN; None when the field is empty."""
    parts = [msg.get(segment, field, n, occurrence=occurrence) for n in range(1, 6)]
    if parts == ['""', "", "", "", ""]:
        return ""
    family, given, middle, suffix, prefix = parts
    if not any(parts):
        return None
    if family and not (given or middle) and " " in family.strip():
        family, given = family.strip().split(" ", 1)
    return "^".join([family, given, middle, prefix, suffix]).rstrip("^")


def doctor(msg: Message, segment: str, field: int, occurrence: int = 1) -> str | None:
    """An XCN field (``id^family^given^middle``) as a DICOM PN; None when empty."""
    parts = [msg.get(segment, field, n, occurrence=occurrence) for n in range(2, 5)]
    if not any(parts):
        return msg.optional(segment, field, occurrence=occurrence)  # the ID alone
    return "^".join(parts).rstrip("^")


def visit(msg: Message) -> VisitData | None:
    if "PV1" not in msg.segment_ids:
        return None
    location = [msg.get("PV1", 3, n) for n in range(1, 4)]
    return VisitData(
        visit_number=msg.optional("PV1", 19),
        patient_class=msg.optional("PV1", 2),
        location="^".join(location).rstrip("^") or None,
        department=msg.optional("PV1", 3) or msg.optional("PV1", 10),
        referring_physician=doctor(msg, "PV1", 8),
    )


def _address(msg: Message, occurrence: int) -> str | None:
    parts = [msg.get("PID", 11, n, occurrence=occurrence) for n in range(1, 7)]
    if not any(parts):
        return None
    return ", ".join(p for p in parts if p and p != '""')
