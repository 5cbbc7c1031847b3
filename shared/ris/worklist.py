"""The Modality Worklist over the RIS tables (RIS-5.1, RIS-5.2, FLOW-1, PACS-6.1; PS3.4 K.6).

One worklist item per scheduled procedure step (SPS), with its requested procedure, order,
patient, visit and the device of its station. A :class:`WorklistQuery` names RIS fields (the
DICOM side, :mod:`mekong.shared.dimse.worklist_keys`, maps attribute keywords to them) and
becomes one SELECT: every key except person names is matched in SQL on indexed columns; person
names are matched in Python (case-insensitive, accents significant, or accent-folded word
prefixes for AEs with fuzzy matching), the patient name after an SQL pre-filter on the folded
name column so a name query does not read every step. Only steps whose status is in
``statuses`` are offered (SCHEDULED and ARRIVED by default; never a final status).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, func, or_, select, true

from mekong.shared.db.ris_schema import (
    ris_device,
    ris_order,
    ris_patient,
    ris_procedure,
    ris_sps,
    ris_visit,
)
from mekong.shared.dicom.names import folded_words, fuzzy_tokens
from mekong.shared.ris.status import FINAL, Status

FIELDS: dict[str, ColumnElement[Any]] = {
    "patient_name": ris_patient.c.name,
    "patient_id": ris_patient.c.patient_id,
    "issuer": ris_patient.c.issuer,
    "birth_date": ris_patient.c.birth_date,
    "sex": ris_patient.c.sex,
    "address": ris_patient.c.address,
    "accession": ris_order.c.accession,
    "priority": ris_order.c.priority,
    "requesting_physician": ris_order.c.ordering_physician,
    "reason": ris_order.c.reason,
    "referring_physician": ris_visit.c.referring_physician,
    "admission_id": ris_visit.c.visit_number,
    "location": ris_visit.c.location,
    "procedure_id": ris_procedure.c.procedure_id,
    "procedure_description": ris_procedure.c.description,
    "service_code": ris_procedure.c.service_code,
    "study_uid": ris_procedure.c.study_uid,
    "sps_id": ris_sps.c.sps_id,
    "station_ae": ris_sps.c.station_ae,
    "station_name": ris_device.c.name,
    "modality": ris_sps.c.modality,
    "start_date": ris_sps.c.start_date,
    "start_time": ris_sps.c.start_time,
    "performing_physician": ris_sps.c.performing_physician,
    "sps_description": ris_sps.c.description,
    "room": ris_sps.c.room,
    "status": ris_sps.c.status,
}
NAME_FIELDS = frozenset(
    {"patient_name", "referring_physician", "requesting_physician", "performing_physician"}
)
OFFERED_BY_DEFAULT = (Status.SCHEDULED, Status.ARRIVED)


@dataclass(frozen=True)
class Range:
    """Inclusive bounds compared as strings; ``""`` leaves that side open. The caller pads
    partial values (a time upper bound ``1700`` arrives as ``170099``)."""

    low: str = ""
    high: str = ""


@dataclass
class WorklistQuery:
    # field → alternatives; each a single value or a ``*``/``?`` pattern (case-sensitive)
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # person-name field → pattern
    ranges: dict[str, Range] = field(default_factory=dict)  # date and time fields
    start: Range | None = None  # combined start date-time, YYYYMMDDHHMMSS bounds
    statuses: tuple[Status, ...] = OFFERED_BY_DEFAULT
    fuzzy_names: bool = False
    limit: int | None = None


def find_items(conn: Connection, query: WorklistQuery) -> list[dict[str, Any]]:
    """Matching worklist items (field → value, ``""`` for unknown), by scheduled start."""
    if any(status in FINAL for status in query.statuses):
        raise ValueError("a worklist never offers final steps")
    rows = conn.execute(_select(query, conn.dialect.name)).mappings().all()
    items = [{name: value if value is not None else "" for name, value in r.items()} for r in rows]
    names = {name: pattern for name, pattern in query.names.items() if _is_restrictive(pattern)}
    matched = [item for item in items if _names_match(item, names, query.fuzzy_names)]
    return matched[: query.limit] if query.limit is not None else matched


def _select(query: WorklistQuery, dialect: str) -> Select[Any]:
    joined = (
        ris_sps.join(ris_procedure, ris_procedure.c.id == ris_sps.c.procedure_fk)
        .join(ris_order, ris_order.c.id == ris_procedure.c.order_fk)
        .join(ris_patient, ris_patient.c.id == ris_order.c.patient_fk)
        .outerjoin(ris_visit, ris_visit.c.id == ris_order.c.visit_fk)
        .outerjoin(ris_device, ris_device.c.ae_title == ris_sps.c.station_ae)
    )
    columns = [column.label(name) for name, column in FIELDS.items()]
    conditions = [
        ris_sps.c.status.in_([str(s) for s in query.statuses]),
        *_conditions(query, dialect),
    ]
    statement = select(*columns).select_from(joined).where(and_(*conditions))
    return statement.order_by(ris_sps.c.start_date, ris_sps.c.start_time, ris_sps.c.id)


def _conditions(query: WorklistQuery, dialect: str) -> list[ColumnElement[bool]]:
    conditions = [
        _any_of(FIELDS[name], values, dialect) for name, values in query.values.items() if values
    ]
    conditions += [_in_range(FIELDS[name], bounds) for name, bounds in query.ranges.items()]
    if query.start is not None:
        conditions.append(_in_range(_start_datetime(), query.start))
    pattern = query.names.get("patient_name", "")
    if _is_restrictive(pattern):
        conditions.append(_name_prefilter(pattern, query.fuzzy_names, dialect))
    return conditions


def _any_of(column: ColumnElement[Any], values: tuple[str, ...], dialect: str) -> Any:
    exact = [v for v in values if not _has_wildcard(v)]
    patterns = [_wildcard(column, v, dialect) for v in values if _has_wildcard(v)]
    alternatives = [column.in_(exact)] if exact else []
    return or_(*alternatives, *patterns)


def _in_range(column: ColumnElement[Any], bounds: Range) -> ColumnElement[bool]:
    conditions = [column != ""]  # an unknown value never matches a range (PS3.4 K.2.2.1.1.1)
    if bounds.low:
        conditions.append(column >= bounds.low)
    if bounds.high:
        conditions.append(column <= bounds.high)
    return and_(*conditions)


def _start_datetime() -> ColumnElement[Any]:
    """``start_date || start_time`` with the time padded to HHMMSS (empty → midnight)."""
    time = func.substr(ris_sps.c.start_time + "000000", 1, 6)
    return ris_sps.c.start_date + time


def _name_prefilter(pattern: str, fuzzy: bool, dialect: str) -> ColumnElement[bool]:
    """A superset of the names matching ``pattern``, on the indexed accent-folded column."""
    column = ris_patient.c.name_folded
    if fuzzy:
        tokens = fuzzy_tokens(pattern)
        return and_(*[column.contains(f" {t}") for t in tokens]) if tokens else true()
    folded = folded_words(pattern.replace("?", "*"))  # '?' may stand for a folded separator
    return _wildcard(column, folded, dialect) if folded.strip(" *") else true()


def _wildcard(column: ColumnElement[Any], pattern: str, dialect: str) -> ColumnElement[bool]:
    """Case-sensitive ``*``/``?`` matching: GLOB on SQLite, LIKE elsewhere."""
    if dialect == "sqlite":
        return column.op("GLOB")("".join({"[": "[[]", "]": "[]]"}.get(c, c) for c in pattern))
    like = "".join(
        {"%": "\\%", "_": "\\_", "\\": "\\\\", "*": "%", "?": "_"}.get(c, c) for c in pattern
    )
    return column.like(like, escape="\\")


def _names_match(item: dict[str, Any], names: dict[str, str], fuzzy: bool) -> bool:
    return all(name_matches(item[field], pattern, fuzzy) for field, pattern in names.items())


def name_matches(value: str, pattern: str, fuzzy: bool = False) -> bool:
    """PN matching: ``*``/``?`` wildcards, case-insensitive with accents significant; with
    ``fuzzy`` every query word must begin a word of the accent-folded name."""
    if fuzzy:
        words = folded_words(value).split()
        return all(any(w.startswith(t) for w in words) for t in fuzzy_tokens(pattern))
    return _pattern_regex(pattern.upper()).fullmatch(value.upper()) is not None


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = {"*": ".*", "?": "."}
    return re.compile("".join(parts.get(c, re.escape(c)) for c in pattern), re.DOTALL)


def _has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _is_restrictive(pattern: str) -> bool:
    return pattern.strip() not in ("", "*")
