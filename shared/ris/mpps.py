"""Modality Performed Procedure Steps: what the modality reports it did (RIS-5.3, RIS-5.4,
FLOW-1, PACS-6.3; PS3.4 F.7, IHE SWF RAD-6/RAD-7).

``create_pps`` (N-CREATE, IN PROGRESS) stores the step, links it to the scheduled steps named
by its Scheduled Step Attributes Sequence (SPS ID, else accession, else Study Instance UID;
several items = the IHE group case) and moves them to IN_PROGRESS. A step that names no known
scheduled step is stored all the same, flagged ``unscheduled`` with the reason. ``update_pps``
(N-SET) applies the modality's changes; once COMPLETED or DISCONTINUED the step is final and
refuses every further change (:class:`PpsFinal`). When a performed step ends, each scheduled
step it performs ends too — COMPLETED if one of its performed steps completed, else
DISCONTINUED — unless another performed step on it is still in progress.

Every status change goes through :func:`mekong.shared.ris.orders.set_step_status` (the status
machine), inside the caller's transaction; an order whose status changes is published as an
:class:`~mekong.shared.ris.events.OrderStatusChanged` (``cause="mpps"``) in that transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, select, update

from mekong.shared.db.ris_schema import (
    ris_order,
    ris_pps,
    ris_pps_series,
    ris_pps_step,
    ris_procedure,
    ris_sps,
)
from mekong.shared.ris import events, orders
from mekong.shared.ris.errors import Duplicate, IllegalTransition, Invalid, NotFound
from mekong.shared.ris.status import ALLOWED, FINAL, Status

PPS_STATUSES = (Status.IN_PROGRESS, Status.COMPLETED, Status.DISCONTINUED)


class PpsFinal(IllegalTransition):
    """The performed step is COMPLETED or DISCONTINUED: it may no longer be updated."""


@dataclass(frozen=True)
class StepReference:
    """One item of the Scheduled Step Attributes Sequence (empty keys: unscheduled)."""

    study_uid: str = ""
    accession: str = ""
    procedure_id: str = ""
    sps_id: str = ""


@dataclass(frozen=True)
class PerformedSeries:
    series_uid: str
    description: str = ""
    protocol: str = ""
    retrieve_ae: str = ""
    images: int = 0


@dataclass
class PerformedStep:
    sop_uid: str
    status: Status
    pps_id: str = ""
    station_ae: str = ""
    calling_ae: str = ""
    modality: str = ""
    start_date: str = ""
    start_time: str = ""
    end_date: str = ""
    end_time: str = ""
    description: str = ""
    patient_id: str = ""
    patient_name: str = ""
    references: tuple[StepReference, ...] = ()
    series: tuple[PerformedSeries, ...] = ()
    attributes: str = ""  # the whole PPS as DICOM JSON


@dataclass(frozen=True)
class PpsOutcome:
    status: Status
    accessions: tuple[str, ...] = ()
    unscheduled: bool = False
    note: str = ""
    patient_id: str = ""


@dataclass
class _Links:
    steps: dict[int, Any] = field(default_factory=dict)  # sps row id → row (with order_fk)
    notes: list[str] = field(default_factory=list)


def create_pps(conn: Connection, step: PerformedStep, changes: list[str]) -> PpsOutcome:
    """N-CREATE: store the IN PROGRESS step, link it, start the scheduled steps it names."""
    if step.status != Status.IN_PROGRESS:
        raise Invalid(
            f"a performed procedure step is created IN PROGRESS, not {step.status}",
            "PerformedProcedureStepStatus",
        )
    if _find(conn, step.sop_uid) is not None:
        raise Duplicate(f"performed procedure step {step.sop_uid} exists", "SOPInstanceUID")
    links = _link(conn, step)
    note = "; ".join(links.notes)
    if not links.steps:
        note = f"unscheduled: {note}"
    now = time.time()
    pps_fk = conn.execute(
        ris_pps.insert().values(
            **_columns(step), sop_uid=step.sop_uid, calling_ae=step.calling_ae,
            unscheduled=not links.steps, link_note=note, created_at=now, updated_at=now,
        )
    ).inserted_primary_key[0]  # fmt: skip
    for sps_fk in links.steps:
        conn.execute(ris_pps_step.insert().values(pps_fk=pps_fk, sps_fk=sps_fk))
    _save_series(conn, pps_fk, step.series)
    changes.append(f"performed step {step.sop_uid} IN_PROGRESS" + (f" ({note})" if note else ""))
    targets = {fk: Status.IN_PROGRESS for fk in links.steps}
    accessions = _move(conn, links.steps, targets, _detail(step), changes)
    return PpsOutcome(Status.IN_PROGRESS, accessions, not links.steps, note, step.patient_id)


def stored_attributes(conn: Connection, sop_uid: str) -> str:
    """The step's attributes as last set (DICOM JSON); NotFound for an unknown instance."""
    row = _find(conn, sop_uid)
    if row is None:
        raise NotFound(f"no performed procedure step {sop_uid}", "SOPInstanceUID")
    return str(row.attributes)


def update_pps(conn: Connection, step: PerformedStep, changes: list[str]) -> PpsOutcome:
    """N-SET: the step with the modality's changes applied; ends the scheduled steps when
    the performed step becomes COMPLETED or DISCONTINUED."""
    row = _find(conn, step.sop_uid)
    if row is None:
        raise NotFound(f"no performed procedure step {step.sop_uid}", "SOPInstanceUID")
    current = Status(row.status)
    if current in FINAL:
        raise PpsFinal(f"performed procedure step is {current}: it may no longer be updated")
    if step.status not in PPS_STATUSES:
        raise Invalid(f"status {step.status} is not a performed step status", "status")
    conn.execute(
        update(ris_pps).where(ris_pps.c.id == row.id)
        .values(**_columns(step), updated_at=time.time())
    )  # fmt: skip
    conn.execute(delete(ris_pps_series).where(ris_pps_series.c.pps_fk == row.id))
    _save_series(conn, row.id, step.series)
    changes.append(f"performed step {step.sop_uid} {current} → {step.status}")
    if step.status in FINAL:
        linked = _linked_steps(conn, row.id)
        accessions = _move(conn, linked, _final_targets(conn, linked), _detail(step), changes)
    else:
        accessions = _accessions(conn, row.id)
    return PpsOutcome(
        step.status, accessions, bool(row.unscheduled), str(row.link_note), str(row.patient_id)
    )


def performed_steps(conn: Connection, unscheduled_only: bool = False) -> list[dict[str, Any]]:
    """Stored performed steps, newest first (for listings and tests)."""
    query = select(ris_pps).order_by(ris_pps.c.id.desc())
    if unscheduled_only:
        query = query.where(ris_pps.c.unscheduled.is_(True))
    rows = conn.execute(query).mappings().all()
    return [{k: v for k, v in row.items() if k != "attributes"} for row in rows]


# --- linking -----------------------------------------------------------------------------------


def _link(conn: Connection, step: PerformedStep) -> _Links:
    links = _Links()
    for ref in step.references:
        found, how = _resolve(conn, ref, step.modality)
        links.steps.update((row.id, row) for row in found)
        if not found:
            links.notes.append(how)
    if not step.references:
        links.notes.append("no Scheduled Step Attributes Sequence item")
    return links


def _resolve(conn: Connection, ref: StepReference, modality: str) -> tuple[list[Any], str]:
    """Scheduled steps named by one reference: SPS ID, else accession, else Study UID."""
    tried = []
    if ref.sps_id:
        rows = conn.execute(_steps_query().where(ris_sps.c.sps_id == ref.sps_id)).all()
        if rows:
            return list(rows), ""
        tried.append(f"SPS ID {ref.sps_id!r}")
    for label, column, value in (
        ("accession", ris_order.c.accession, ref.accession),
        ("Study Instance UID", ris_procedure.c.study_uid, ref.study_uid),
    ):
        if value:
            rows = conn.execute(_steps_query().where(column == value)).all()
            if rows:
                return _prefer_open(list(rows), modality), ""
            tried.append(f"{label} {value!r}")
    if not tried:
        return [], "no SPS ID, accession or Study Instance UID"
    return [], f"no scheduled step with {' or '.join(tried)}"


def _steps_query() -> Any:
    return (
        select(ris_sps, ris_procedure.c.order_fk)
        .join(ris_procedure, ris_procedure.c.id == ris_sps.c.procedure_fk)
        .join(ris_order, ris_order.c.id == ris_procedure.c.order_fk)
        .order_by(ris_sps.c.id)
    )


def _prefer_open(rows: list[Any], modality: str) -> list[Any]:
    """Of an order's steps: the open ones of the step's modality, else every open one."""
    open_rows = [r for r in rows if Status(r.status) not in FINAL] or rows
    same = [r for r in open_rows if r.modality == modality]
    return same or open_rows


def _linked_steps(conn: Connection, pps_fk: int) -> dict[int, Any]:
    query = _steps_query().join(ris_pps_step, ris_pps_step.c.sps_fk == ris_sps.c.id)
    rows = conn.execute(query.where(ris_pps_step.c.pps_fk == pps_fk)).all()
    return {row.id: row for row in rows}


def _final_targets(conn: Connection, linked: dict[int, Any]) -> dict[int, Status]:
    """What each linked scheduled step becomes now, if every performed step on it ended."""
    targets = {}
    for sps_fk in linked:
        statuses = {
            Status(s)
            for s in conn.execute(
                select(ris_pps.c.status)
                .join(ris_pps_step, ris_pps_step.c.pps_fk == ris_pps.c.id)
                .where(ris_pps_step.c.sps_fk == sps_fk)
            ).scalars()
        }
        if statuses <= FINAL:
            done = Status.COMPLETED in statuses
            targets[sps_fk] = Status.COMPLETED if done else Status.DISCONTINUED
    return targets


# --- status changes ----------------------------------------------------------------------------


def _move(
    conn: Connection,
    steps: dict[int, Any],
    targets: dict[int, Status],
    detail: dict[str, str],
    changes: list[str],
) -> tuple[str, ...]:
    """Move scheduled steps through the status machine; publish the orders that changed."""
    before = _order_statuses(conn, {row.order_fk for row in steps.values()})
    for sps_fk, new in targets.items():
        row = steps[sps_fk]
        current = Status(row.status)
        if new in ALLOWED[current]:
            orders.set_step_status(conn, row.sps_id, new, changes)
        elif current != new:
            changes.append(f"step {row.sps_id} is {current}: not moved to {new}")
    after = _order_statuses(conn, set(before))
    for order_fk, (accession, previous) in before.items():
        status = after[order_fk][1]
        if status != previous:
            event = events.OrderStatusChanged(accession, previous, status, "mpps", detail)
            events.status_changed(conn, event)
    return tuple(sorted(accession for accession, _ in before.values()))


def _order_statuses(conn: Connection, order_fks: set[int]) -> dict[int, tuple[str, Status]]:
    rows = conn.execute(
        select(ris_order.c.id, ris_order.c.accession, ris_order.c.status).where(
            ris_order.c.id.in_(order_fks)
        )
    ).all()
    return {row.id: (row.accession, Status(row.status)) for row in rows}


def _accessions(conn: Connection, pps_fk: int) -> tuple[str, ...]:
    order_fks = {row.order_fk for row in _linked_steps(conn, pps_fk).values()}
    return tuple(sorted(accession for accession, _ in _order_statuses(conn, order_fks).values()))


# --- rows --------------------------------------------------------------------------------------


def _find(conn: Connection, sop_uid: str) -> Any | None:
    return conn.execute(select(ris_pps).where(ris_pps.c.sop_uid == sop_uid)).first()


def _columns(step: PerformedStep) -> dict[str, Any]:
    first = step.references[0] if step.references else StepReference()
    return {
        "status": step.status.value, "pps_id": step.pps_id, "station_ae": step.station_ae,
        "modality": step.modality, "start_date": step.start_date, "start_time": step.start_time,
        "end_date": step.end_date, "end_time": step.end_time, "description": step.description,
        "patient_id": step.patient_id, "patient_name": step.patient_name,
        "study_uid": first.study_uid, "accession": first.accession,
        "attributes": step.attributes,
    }  # fmt: skip


def _save_series(conn: Connection, pps_fk: int, series: tuple[PerformedSeries, ...]) -> None:
    for item in series:
        conn.execute(
            ris_pps_series.insert().values(
                pps_fk=pps_fk, series_uid=item.series_uid, description=item.description,
                protocol=item.protocol, retrieve_ae=item.retrieve_ae, images=item.images,
            )
        )  # fmt: skip


def _detail(step: PerformedStep) -> dict[str, str]:
    return {
        "pps_uid": step.sop_uid,
        "pps_status": step.status.value,
        "station_ae": step.station_ae,
        "modality": step.modality,
    }
