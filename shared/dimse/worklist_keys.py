"""Modality Worklist C-FIND identifiers → RIS worklist queries (RIS-5.1; PS3.4 K.6.1, C.2.2.2).

The key tables here say which attributes Mekong matches (M) and returns (R), and where each
lives in the RIS (:data:`mekong.shared.ris.worklist.FIELDS`); the response builder uses the
same tables. Matching: universal (empty or ``*``), single value, ``*``/``?`` wildcards
(case-sensitive except person names), lists of values (``CT\\MR``, any of them), DA and TM
ranges (``a-b``, ``-b``, ``a-``) and, when the requester negotiated it, the start date and
time as one combined date-time range. Keys in ScheduledProcedureStepSequence are matched
inside its single item. A value that cannot be matched (a malformed date, a range ending
before it starts, two items in a sequence key, a wrong VR) raises :class:`IdentifierError`,
answered 0xA900 with the reason.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from mekong.shared.dimse.identifiers import IdentifierError
from mekong.shared.ris.status import Status
from mekong.shared.ris.worklist import Range, WorklistQuery


@dataclass(frozen=True)
class Key:
    field: str  # RIS field, or "" for a key answered by the response builder itself
    vr: str
    match: bool = True  # False: a return key only


SPS_SEQUENCE = "ScheduledProcedureStepSequence"

TOP_KEYS: dict[str, Key] = {
    "PatientName": Key("patient_name", "PN"),
    "PatientID": Key("patient_id", "LO"),
    "IssuerOfPatientID": Key("issuer", "LO"),
    "PatientBirthDate": Key("birth_date", "DA"),
    "PatientSex": Key("sex", "CS"),
    "PatientAddress": Key("address", "LO", match=False),
    "AccessionNumber": Key("accession", "SH"),
    "ReferringPhysicianName": Key("referring_physician", "PN"),
    "RequestingPhysician": Key("requesting_physician", "PN"),
    "ReasonForTheRequestedProcedure": Key("reason", "LO"),
    "RequestedProcedurePriority": Key("priority", "SH"),
    "AdmissionID": Key("admission_id", "LO"),
    "CurrentPatientLocation": Key("location", "LO"),
    "StudyInstanceUID": Key("study_uid", "UI"),
    "RequestedProcedureID": Key("procedure_id", "SH"),
    "RequestedProcedureDescription": Key("procedure_description", "LO"),
    "RequestedProcedureCodeSequence": Key("", "SQ", match=False),
    "ReferencedStudySequence": Key("", "SQ", match=False),
    "ReferencedPatientSequence": Key("", "SQ", match=False),
}
STEP_KEYS: dict[str, Key] = {
    "ScheduledStationAETitle": Key("station_ae", "AE"),
    "ScheduledProcedureStepStartDate": Key("start_date", "DA"),
    "ScheduledProcedureStepStartTime": Key("start_time", "TM"),
    "Modality": Key("modality", "CS"),
    "ScheduledPerformingPhysicianName": Key("performing_physician", "PN"),
    "ScheduledProcedureStepDescription": Key("sps_description", "LO"),
    "ScheduledStationName": Key("station_name", "SH"),
    "ScheduledProcedureStepLocation": Key("room", "SH"),
    "ScheduledProcedureStepID": Key("sps_id", "SH"),
    "ScheduledProcedureStepStatus": Key("status", "CS"),
    "ScheduledProtocolCodeSequence": Key("", "SQ", match=False),
}
# PS3.3 C.4.10 Scheduled Procedure Step Status defined terms ↔ the RIS status machine
DICOM_STATUS = {
    Status.SCHEDULED: "SCHEDULED",
    Status.ARRIVED: "ARRIVED",
    Status.IN_PROGRESS: "STARTED",
    Status.COMPLETED: "COMPLETED",
    Status.DISCONTINUED: "DISCONTINUED",
    Status.CANCELLED: "CANCELED",
}
_DATE = re.compile(r"^\d{8}$")
_TIME = re.compile(r"^(\d\d)(\d\d)?(\d\d)?(?:\.\d{1,6})?$")


@dataclass
class ParsedQuery:
    query: WorklistQuery
    unsupported: list[str] = field(default_factory=list)  # keys with values not matched


def parse_identifier(
    identifier: Dataset, offered: tuple[Status, ...], fuzzy: bool, combined: bool
) -> ParsedQuery:
    """The worklist query an identifier asks for, limited to the ``offered`` statuses."""
    parsed = ParsedQuery(WorklistQuery(statuses=offered, fuzzy_names=fuzzy))
    for element in identifier:
        if element.keyword == SPS_SEQUENCE:
            _step_item(element, parsed)
        elif element.keyword != "SpecificCharacterSet":
            _key(element, TOP_KEYS.get(element.keyword), parsed)
    if combined:
        _combine_start(parsed.query)
    start_time = parsed.query.ranges.get("start_time")
    if start_time is not None:  # matched on its own: a range may not cross midnight
        _ordered(start_time, "ScheduledProcedureStepStartTime")
    return parsed


def _step_item(element: DataElement, parsed: ParsedQuery) -> None:
    if element.VR != "SQ":
        raise IdentifierError(f"{SPS_SEQUENCE} must be a sequence (VR SQ), got {element.VR}")
    items = list(element.value or [])
    if len(items) > 1:
        raise IdentifierError(f"{SPS_SEQUENCE} holds {len(items)} items; a query key has one")
    for inner in items[0] if items else []:
        if inner.keyword != "SpecificCharacterSet":
            _key(inner, STEP_KEYS.get(inner.keyword), parsed)


def _key(element: DataElement, key: Key | None, parsed: ParsedQuery) -> None:
    keyword = element.keyword or str(element.tag)
    if key is not None and element.VR not in (key.vr, "UN"):
        raise IdentifierError(f"{keyword} has VR {element.VR}; its VR is {key.vr}")
    values = _values(element)
    if not values or values == ["*"]:
        return  # universal matching
    if key is None or not key.match:
        parsed.unsupported.append(keyword)
        return
    _constrain(parsed.query, keyword, key, values)


def _values(element: DataElement) -> list[str]:
    if element.VR == "SQ":  # a return key unless an item holds a value to match
        return ["<item>"] if any(_has_value(item) for item in element.value or []) else []
    value = element.value
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [str(v).strip() for v in value]
    if isinstance(value, bytes):
        raise IdentifierError(f"{element.keyword or element.tag} has a binary value")
    text = str(value).strip()
    return [text] if text else []


def _has_value(item: Dataset) -> bool:
    for element in item:
        if element.VR == "SQ":
            if any(_has_value(inner) for inner in element.value or []):
                return True
        elif element.value not in (None, "", b""):
            return True
    return False


def _constrain(query: WorklistQuery, keyword: str, key: Key, values: list[str]) -> None:
    if key.vr in ("DA", "TM", "PN") and len(values) > 1:
        raise IdentifierError(f"{keyword}: one value expected, got {len(values)}")
    if key.vr == "DA":
        query.ranges[key.field] = date_range(values[0], keyword)
    elif key.vr == "TM":  # order checked once it is known whether it combines with the date
        query.ranges[key.field] = time_range(values[0], keyword, ordered=False)
    elif key.vr == "PN":
        query.names[key.field] = values[0]
    elif key.field == "status":
        query.statuses = _statuses(query.statuses, values)
    else:
        if key.vr == "UI" and any("*" in v or "?" in v for v in values):
            raise IdentifierError(f"{keyword}: a UID key takes no wildcards")
        query.values[key.field] = tuple(values)


def _statuses(offered: tuple[Status, ...], values: list[str]) -> tuple[Status, ...]:
    """The offered statuses whose DICOM term matches one of ``values``."""
    return tuple(s for s in offered if any(fnmatchcase(DICOM_STATUS[s], v) for v in values))


def date_range(value: str, keyword: str) -> Range:
    """``YYYYMMDD``, ``a-b``, ``-b`` or ``a-`` as inclusive bounds."""
    if "-" not in value:
        day = _date(value, keyword)
        return Range(day, day)
    low, _, high = (part.strip() for part in value.partition("-"))
    if not low and not high:
        raise IdentifierError(f"{keyword}: range {value!r} has no bounds")
    try:
        bounds = Range(_date(low, keyword) if low else "", _date(high, keyword) if high else "")
    except IdentifierError:
        raise IdentifierError(f"{keyword}: {value!r} is not a date range") from None
    _ordered(bounds, keyword)
    return bounds


def time_range(value: str, keyword: str, ordered: bool = True) -> Range:
    """``HH[MM[SS[.F]]]`` or a range of them; a bound covers its whole precision (``-1700``
    includes 17:00:59). Ranges crossing midnight are refused (PS3.4 C.2.2.2.5)."""
    if "-" not in value:
        return Range(_time(value, keyword, upper=False), _time(value, keyword, upper=True))
    low, _, high = (part.strip() for part in value.partition("-"))
    if not low and not high:
        raise IdentifierError(f"{keyword}: range {value!r} has no bounds")
    bounds = Range(
        _time(low, keyword, upper=False) if low else "",
        _time(high, keyword, upper=True) if high else "",
    )
    if ordered:
        _ordered(bounds, keyword)
    return bounds


def _ordered(bounds: Range, keyword: str) -> None:
    if bounds.low and bounds.high and bounds.low > bounds.high:
        raise IdentifierError(f"{keyword}: the range ends before it starts")


def _date(value: str, keyword: str) -> str:
    try:
        if _DATE.match(value):
            dt.datetime.strptime(value, "%Y%m%d")
            return value
    except ValueError:
        pass
    raise IdentifierError(f"{keyword}: {value!r} is not a date YYYYMMDD")


def _time(value: str, keyword: str, upper: bool) -> str:
    match = _TIME.match(value.replace(":", ""))
    parts = [p for p in match.groups() if p is not None] if match else []
    limits = (23, 59, 59)
    if not parts or any(int(p) > limit for p, limit in zip(parts, limits, strict=False)):
        raise IdentifierError(f"{keyword}: {value!r} is not a time HH[MM[SS[.FFFFFF]]]")
    digits = "".join(parts)
    return digits.ljust(6, "9") if upper else digits.ljust(6, "0")


def _combine_start(query: WorklistQuery) -> None:
    """Combined date-time matching (negotiated): start date and time as one range."""
    date, time = query.ranges.get("start_date"), query.ranges.get("start_time")
    if date is None or time is None:
        return
    del query.ranges["start_time"]
    low = date.low + (time.low or "000000") if date.low else ""
    high = date.high + (time.high or "999999") if date.high else ""
    query.start = Range(low, high)


def describe(query: WorklistQuery) -> dict[str, Any]:
    """The query in short, for the audit trail."""
    keys: dict[str, Any] = {name: "\\".join(values) for name, values in query.values.items()}
    keys.update({name: f"{r.low}-{r.high}" for name, r in query.ranges.items()})
    keys.update(query.names)
    if query.start is not None:
        keys["start"] = f"{query.start.low}-{query.start.high}"
    return keys
