"""Status changes that the HIS must hear about, and the outbound message for each (RIS-5.3,
RIS-5.4, RIS-6.2, FLOW-1/2).

Call these instead of :mod:`~mekong.shared.ris.orders`' status functions wherever Mekong
itself changes an order (the console / REST API, reconciliation): they change the status
through the status machine and, inside the same transaction, put one outbound HL7 message per
configured destination in the outbox (:mod:`mekong.shared.hl7.outbound.outbox`). MPPS moves
steps itself and publishes :class:`~mekong.shared.ris.events.OrderStatusChanged` in its
transaction; :func:`on_order_status_changed` is subscribed to those events in every DICOM
process (``mekong.shared.dimse.mpps.connect_outbound``). Changes the HIS asked for by HL7
(ORC-1 CA / DC / SC) are not echoed back to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from mekong.shared.db.ris_schema import ris_order, ris_pps_step, ris_procedure, ris_sps
from mekong.shared.hl7.outbound import outbox
from mekong.shared.hl7.outbound.build import StatusEvent
from mekong.shared.ris import links, orders, upstream
from mekong.shared.ris.errors import NotFound
from mekong.shared.ris.model import OrderKey
from mekong.shared.ris.status import Status

NOTIFIED = frozenset(
    {Status.ARRIVED, Status.IN_PROGRESS, Status.COMPLETED, Status.DISCONTINUED, Status.CANCELLED}
)
_STARTABLE = (Status.SCHEDULED, Status.ARRIVED)


def record_step_status(conn: Connection, sps_id: str, new: Status, changes: list[str]) -> str:
    """Record a step status change Mekong makes (a technician's action, a device without
    MPPS) and tell the HIS (RIS-5.3, RIS-5.4, RIS-6.2). MPPS itself moves its steps in
    ``ris.mpps`` and announces them by event; :func:`on_order_status_changed` enqueues those.

    Moves the scheduled procedure step ``sps_id`` to ``new`` through the status machine
    (``IllegalTransition`` / ``NotFound`` as :func:`orders.set_step_status`) and, when the
    order's status changes as a result, enqueues the outbound status message (ORM^O01 /
    OMI^O23 ORC-1 SC, per ``[[hl7.destinations]]``) in the caller's transaction — so the
    message exists exactly when the change commits. Returns the order's accession number.
    Run it inside ``Index.transaction`` / ``transaction_blocking``.
    """
    order_fk, before = _order_of_step(conn, sps_id)
    accession = orders.set_step_status(conn, sps_id, new, changes)
    order_status_changed(conn, order_fk, before, changes)
    return accession


def record_order_status(conn: Connection, key: OrderKey, new: Status, changes: list[str]) -> str:
    """Move every open step of an order (the console / REST API: arrived, cancel, ...) and
    enqueue the outbound message as :func:`record_step_status` does."""
    row = orders.find_order(conn, key)
    accession = orders.set_order_status(conn, key, new, changes)
    order_status_changed(conn, row.id, Status(row.status), changes)
    return accession


def on_order_status_changed(conn: Connection, event: Any) -> None:
    """The same hook as a listener, for a publisher that moved an order itself (MPPS) and
    announces it inside its transaction with an event carrying ``accession``, ``previous``
    and ``cause``: enqueues the outbound message for the order's current status. Changes
    caused by the HIS (``cause == "hl7"``) are not sent back."""
    if getattr(event, "cause", "") == "hl7":
        return
    row = orders.find_order(conn, OrderKey(accession=event.accession))
    order_status_changed(conn, int(row.id), Status(event.previous), [])


def order_status_changed(
    conn: Connection, order_fk: int, before: Status, changes: list[str]
) -> None:
    """Enqueue the status message if the order's status is no longer ``before``."""
    order = _order(conn, order_fk)
    status = Status(order.status)
    if status != before:
        upstream.record(conn, order.accession, status)
    if status != before and status in NOTIFIED:
        sent = outbox.enqueue(conn, status_event(conn, order_fk, status.value))
        if sent:
            changes.append(f"HIS notified: {status} ({len(sent)} destination(s))")


def images_available(conn: Connection, order_fk: int, changes: list[str]) -> None:
    """A stored study was linked to the order: tell the HIS, with the viewer link."""
    sent = outbox.enqueue(conn, status_event(conn, order_fk, "IMAGES_AVAILABLE"))
    if sent:
        changes.append(f"HIS notified: images available ({len(sent)} destination(s))")


def start_steps(
    conn: Connection, order_fk: int, sps_id: str, modality: str, changes: list[str]
) -> list[str]:
    """Images arrived for the order: its steps that have not started (the one named by
    ``sps_id``, else those of the study's modality, else all) move to IN_PROGRESS, as MPPS
    N-CREATE would. Returns the SPS IDs moved."""
    steps = [s for s in _steps(conn, order_fk) if s.status in _STARTABLE]
    chosen = [s for s in steps if s.sps_id == sps_id] if sps_id else []
    chosen = chosen or [s for s in steps if modality and s.modality == modality] or steps
    if not chosen:
        return []
    before = Status(_order(conn, order_fk).status)
    for step in chosen:
        orders.set_step_status(conn, step.sps_id, Status.IN_PROGRESS, changes)
    order_status_changed(conn, order_fk, before, changes)
    return [s.sps_id for s in chosen]


def complete_steps(conn: Connection, order_fk: int, sps_ids: Iterable[str],
                   changes: list[str]) -> None:  # fmt: skip
    """Complete those of ``sps_ids`` still IN_PROGRESS (a study idle long enough, for a
    modality without MPPS); a step an MPPS performs is left for its N-SET."""
    before = Status(_order(conn, order_fk).status)
    for step in _steps(conn, order_fk):
        if step.sps_id not in sps_ids or step.status != Status.IN_PROGRESS:
            continue
        if _performed_by_mpps(conn, step.id):
            changes.append(f"step {step.sps_id} has an MPPS: left to it")
            continue
        orders.set_step_status(conn, step.sps_id, Status.COMPLETED, changes)
    order_status_changed(conn, order_fk, before, changes)


def _performed_by_mpps(conn: Connection, sps_fk: int) -> bool:
    query = select(ris_pps_step.c.pps_fk).where(ris_pps_step.c.sps_fk == sps_fk).limit(1)
    return conn.execute(query).first() is not None


def status_event(conn: Connection, order_fk: int, event: str) -> StatusEvent:
    """A snapshot of the order for its outbound message."""
    order = orders.order_json(conn, _order(conn, order_fk))
    patient, procedure = order["patient"], order["procedure"]
    visit = order["visit"] or {}
    step = next((s for s in order["steps"] if s["status"] == order["status"]),
                order["steps"][0] if order["steps"] else {})  # fmt: skip
    return StatusEvent(
        event=event, status=order["status"], accession=order["accession"],
        placer_number=order["placer_number"], filler_number=order["filler_number"],
        patient_id=patient["id"], issuer=patient["issuer"], patient_name=patient["name"],
        birth_date=patient["birth_date"], sex=patient["sex"],
        patient_class=visit.get("patient_class", ""), location=visit.get("location", ""),
        referring_physician=visit.get("referring_physician", ""),
        procedure_id=procedure["id"], service_code=procedure["service_code"],
        description=procedure["description"], procedure_study_uid=procedure["study_uid"],
        sps_id=step.get("sps_id", ""), modality=step.get("modality", ""),
        station_ae=step.get("station_ae", ""),
        scheduled=step.get("start_date", "") + step.get("start_time", ""),
        study_uids=links.linked_study_uids(conn, order_fk), at=time.time(),
    )  # fmt: skip


def _order(conn: Connection, order_fk: int) -> Any:
    return conn.execute(select(ris_order).where(ris_order.c.id == order_fk)).one()


def _order_of_step(conn: Connection, sps_id: str) -> tuple[int, Status]:
    query = (
        select(ris_order.c.id, ris_order.c.status)
        .join(ris_procedure, ris_procedure.c.order_fk == ris_order.c.id)
        .join(ris_sps, ris_sps.c.procedure_fk == ris_procedure.c.id)
        .where(ris_sps.c.sps_id == sps_id)
    )
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no scheduled procedure step {sps_id!r}", "sps_id")
    return int(row.id), Status(row.status)


def _steps(conn: Connection, order_fk: int) -> list[Any]:
    query = (
        select(ris_sps)
        .join(ris_procedure, ris_procedure.c.id == ris_sps.c.procedure_fk)
        .where(ris_procedure.c.order_fk == order_fk)
        .order_by(ris_sps.c.id)
    )
    return list(conn.execute(query))
