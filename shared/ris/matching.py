"""Which order an arriving study belongs to (RIS-3.8, FLOW-1/2): the match cascade.

1. Accession Number (0008,0050), or the one in Request Attributes Sequence; a QR-label token
   ``A:<accession>|P:<patient>`` is read for its ``A:`` part;
2. Study Instance UID = the requested procedure's Study Instance UID (from the MWL);
3. Scheduled Procedure Step ID, then Requested Procedure ID, in Request Attributes Sequence.

Before all of them, for a study from a *key device* (``[[edge.key_devices]]``: a calling AE
that carries a scanned QR-label key in a configured attribute), a value shaped like a label
key decides alone: its order, or unmatched with why (``ris.labels``: bad check digit, unknown
key, cancelled order, another patient's key).

The first key naming an order links the study, unless that order is CANCELLED. Nothing
else links: Patient ID + modality + calling AE title inside the scheduled window
(``recon.suggest_before/after_minutes`` around the step's start) only yields a *suggestion*
kept with the unmatched study for a person to confirm.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from mekong.shared.db.ris_schema import ris_order, ris_patient, ris_procedure, ris_sps
from mekong.shared.ris import labels
from mekong.shared.ris.patients import find_patient
from mekong.shared.ris.status import Status

_TOKEN = re.compile(r"(?:^|\|)\s*A:([^|]+)")
_OPEN = (Status.SCHEDULED, Status.ARRIVED, Status.IN_PROGRESS)

NO_KEY = "NO_KEY"
UNKNOWN_KEY = "UNKNOWN_KEY"
ORDER_CANCELLED = "ORDER_CANCELLED"
AMBIGUOUS = "AMBIGUOUS"


@dataclass(frozen=True)
class StudyFacts:
    """What the first instance of a study says about its order."""

    study_uid: str
    accession: str = ""
    patient_id: str = ""
    issuer: str = ""
    modality: str = ""
    calling_ae: str = ""
    study_date: str = ""
    study_time: str = ""
    request_accessions: tuple[str, ...] = ()
    sps_ids: tuple[str, ...] = ()
    procedure_ids: tuple[str, ...] = ()
    received_at: float = 0.0
    label_key: str = ""  # the value a key device's attribute (+ regex) gave, maybe ""
    label_where: str = ""  # "AccessionNumber from US_OLD"; "" = not a key device
    label_attribute: str = ""  # the attribute that carries the key


@dataclass(frozen=True)
class Window:
    before: dt.timedelta = dt.timedelta(hours=2)
    after: dt.timedelta = dt.timedelta(hours=6)


@dataclass(frozen=True)
class Match:
    order: Any  # ris_order row
    by: str  # label, accession, study_uid, sps_id, procedure_id
    sps_id: str = ""  # the step the study named, if it named one


@dataclass(frozen=True)
class NoMatch:
    code: str
    reason: str
    suggestion: Any | None = None  # ris_order row, never linked on its own


def match_study(conn: Connection, facts: StudyFacts, window: Window) -> Match | NoMatch:
    notes: list[str] = []
    cancelled: list[str] = []
    if facts.label_where:
        if labels.is_key_shaped(facts.label_key):
            return _by_label(conn, facts)
        notes.append(f"no label key in {facts.label_where}")
    for attempt in (_by_accession, _by_study_uid, _by_step, _by_procedure):
        found = attempt(conn, facts, notes)
        if found is None:
            continue
        if found.order.status == Status.CANCELLED:
            cancelled.append(f"{found.by} names order {found.order.accession}, which is CANCELLED")
            continue
        return found
    suggestion = suggest(conn, facts, window)
    return _no_match(notes, cancelled, suggestion)


def accessions(facts: StudyFacts) -> list[str]:
    """Accession numbers the study carries, QR tokens resolved, without repeats."""
    found: list[str] = []
    for raw in (facts.accession, *facts.request_accessions):
        value = raw.strip()
        token = _TOKEN.search(value)
        if token:
            value = token.group(1).strip()
        if value and value not in found:
            found.append(value)
    return found


def _by_label(conn: Connection, facts: StudyFacts) -> Match | NoMatch:
    """A key device's key: its order, or a refusal with the reason (never a fall-through)."""
    own_id = facts.label_attribute != "PatientID"  # else the Patient ID *is* the key
    patient = ris_patient_of(conn, facts) if own_id else None
    verdict = labels.judge_key(conn, facts.label_key, facts.label_where, patient,
                               facts.patient_id if own_id else "")  # fmt: skip
    if verdict.order is None:
        return NoMatch(verdict.code, verdict.reason)
    return Match(verdict.order, "label")


def _by_accession(conn: Connection, facts: StudyFacts, notes: list[str]) -> Match | None:
    wanted = accessions(facts)
    for value in wanted:
        row = conn.execute(select(ris_order).where(ris_order.c.accession == value)).first()
        if row is not None:
            return Match(row, "accession")
    if wanted:
        notes.append(f"Accession Number {', '.join(map(repr, wanted))} names no order")
    return None


def _by_study_uid(conn: Connection, facts: StudyFacts, notes: list[str]) -> Match | None:
    query = (
        select(ris_order)
        .join(ris_procedure, ris_procedure.c.order_fk == ris_order.c.id)
        .where(ris_procedure.c.study_uid == facts.study_uid)
    )
    row = conn.execute(query).first()
    return Match(row, "study_uid") if row is not None else None


def _by_step(conn: Connection, facts: StudyFacts, notes: list[str]) -> Match | None:
    for sps_id in facts.sps_ids:
        query = (
            select(ris_order)
            .join(ris_procedure, ris_procedure.c.order_fk == ris_order.c.id)
            .join(ris_sps, ris_sps.c.procedure_fk == ris_procedure.c.id)
            .where(ris_sps.c.sps_id == sps_id)
        )
        row = conn.execute(query).first()
        if row is not None:
            return Match(row, "sps_id", sps_id)
    if facts.sps_ids:
        notes.append(f"SPS ID {', '.join(map(repr, facts.sps_ids))} names no order")
    return None


def _by_procedure(conn: Connection, facts: StudyFacts, notes: list[str]) -> Match | None:
    for procedure_id in facts.procedure_ids:
        query = (
            select(ris_order)
            .join(ris_procedure, ris_procedure.c.order_fk == ris_order.c.id)
            .where(ris_procedure.c.procedure_id == procedure_id)
        )
        rows = conn.execute(query.limit(2)).all()
        if len(rows) == 1:
            return Match(rows[0], "procedure_id")
        if len(rows) > 1:
            notes.append(f"Requested Procedure ID {procedure_id!r} names several orders")
            return None
    if facts.procedure_ids:
        notes.append(f"Requested Procedure ID {', '.join(map(repr, facts.procedure_ids))} "
                     "names no order")  # fmt: skip
    return None


def suggest(conn: Connection, facts: StudyFacts, window: Window) -> Any | None:
    """An open order of the same patient whose step has the study's modality, is scheduled on
    the calling AE and starts inside the window around the study's date/time (closest first)."""
    patient = ris_patient_of(conn, facts)
    when = _study_time(facts)
    if patient is None or not facts.modality or not facts.calling_ae or when is None:
        return None
    query = (
        select(ris_order, ris_sps.c.start_date, ris_sps.c.start_time)
        .join(ris_procedure, ris_procedure.c.order_fk == ris_order.c.id)
        .join(ris_sps, ris_sps.c.procedure_fk == ris_procedure.c.id)
        .where(
            ris_order.c.patient_fk == patient.id,
            ris_order.c.status.in_([s.value for s in _OPEN]),
            ris_sps.c.modality == facts.modality,
            ris_sps.c.station_ae == facts.calling_ae,
        )
    )
    best: tuple[dt.timedelta, Any] | None = None
    for row in conn.execute(query):
        start = _parse(row.start_date, row.start_time)
        if start is None or not start - window.before <= when <= start + window.after:
            continue
        distance = abs(when - start)
        if best is None or distance < best[0]:
            best = (distance, row)
    return best[1] if best else None


def ris_patient_of(conn: Connection, facts: StudyFacts) -> Any | None:
    """The RIS patient (after merges) the study's Patient ID names: with its issuer, or, when
    the instance carries none, the only RIS patient with that ID."""
    if not facts.patient_id:
        return None
    row = find_patient(conn, facts.patient_id, facts.issuer)
    if row is not None or facts.issuer:
        return row
    rows = conn.execute(  # the modality often leaves the issuer out
        select(ris_patient.c.id).where(ris_patient.c.patient_id == facts.patient_id).limit(2)
    ).all()
    if len(rows) != 1:
        return None
    only = conn.execute(select(ris_patient).where(ris_patient.c.id == rows[0].id)).one()
    return find_patient(conn, only.patient_id, only.issuer)


def _study_time(facts: StudyFacts) -> dt.datetime | None:
    parsed = _parse(facts.study_date, facts.study_time)
    if parsed is None and facts.received_at:
        return dt.datetime.fromtimestamp(facts.received_at)
    return parsed


def _parse(date: str, time_of_day: str) -> dt.datetime | None:
    digits = re.sub(r"\D", "", time_of_day.split(".")[0])[:6].ljust(6, "0")
    try:
        return dt.datetime.strptime(date.strip()[:8] + digits, "%Y%m%d%H%M%S")
    except ValueError:
        return None


def _no_match(notes: list[str], cancelled: list[str], suggestion: Any | None) -> NoMatch:
    hint = f"; suggested order {suggestion.accession} (same patient, modality, station " \
           "and time): confirm by linking" if suggestion is not None else ""  # fmt: skip
    if cancelled:
        return NoMatch(ORDER_CANCELLED, "; ".join(cancelled + notes) + hint, suggestion)
    ambiguous = [n for n in notes if "several" in n]
    if ambiguous:
        return NoMatch(AMBIGUOUS, "; ".join(notes) + hint, suggestion)
    if notes:
        return NoMatch(UNKNOWN_KEY, "; ".join(notes) + hint, suggestion)
    reason = "the study has no Accession Number, no SPS or Requested Procedure ID, and its " \
             "Study Instance UID is not an order's"  # fmt: skip
    return NoMatch(NO_KEY, reason + hint, suggestion)
