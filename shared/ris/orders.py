"""Orders: create, change, cancel, discontinue, move through the status machine, read
(RIS-3.7, RIS-6.1, RIS-9.4). One order = one requested procedure with one or more scheduled
procedure steps (SPS), the unit a modality sees in its worklist.

Numbers the HIS leaves out are assigned here (the RIS is the order filler): accession
``MK`` + 8 digits, requested procedure ID and SPS ID equal to the accession (a second step gets
``-2``, ...), filler order number equal to the accession, and a Study Instance UID (2.25 form).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from mekong.shared.db.ris_schema import (
    ris_order,
    ris_patient,
    ris_procedure,
    ris_sps,
    ris_visit,
)
from mekong.shared.dicom import uids
from mekong.shared.ris import catalogue, events, links, validate
from mekong.shared.ris.errors import Duplicate, IllegalTransition, Missing, NotFound, UnknownCode
from mekong.shared.ris.model import OrderKey, OrderRequest, StepData, VisitData
from mekong.shared.ris.patients import patient_json, upsert_patient
from mekong.shared.ris.status import EDITABLE, FINAL, Status, check_transition, order_status

PRIORITIES = ("STAT", "HIGH", "ROUTINE", "MEDIUM", "LOW")
# Statements every new order runs, built once (building one costs more than running it).
_ID_BY = {
    column: select(column.table.c.id).where(column == bindparam("value"))
    for column in (ris_order.c.accession, ris_sps.c.sps_id)
}
_PLACER = select(ris_order.c.accession).where(
    ris_order.c.placer_number == bindparam("placer"), ris_order.c.source == bindparam("source")
)
_VISIT = select(ris_visit.c.id).where(
    ris_visit.c.patient_fk == bindparam("patient_fk"),
    ris_visit.c.visit_number == bindparam("number"),
)
_INSERT_ORDER, _INSERT_PROCEDURE, _INSERT_STEP, _INSERT_VISIT = (
    table.insert() for table in (ris_order, ris_procedure, ris_sps, ris_visit)
)
PATIENT_CLASSES = ("I", "O", "E", "")


def create_order(conn: Connection, req: OrderRequest, changes: list[str]) -> str:
    """A new order with its procedure and steps; returns the accession number."""
    order = _clean_order(req)
    accession = order.pop("accession", "")
    if accession:
        _refuse_duplicate(conn, ris_order.c.accession, accession, "accession")
    if order.get("placer_number"):
        _refuse_duplicate_placer(conn, order["placer_number"], req.source)
    if not req.steps:
        raise Missing("an order needs at least one scheduled procedure step", "steps")
    patient_fk = upsert_patient(conn, req.patient, changes)
    visit_fk = _visit(conn, patient_fk, req.visit)
    now = time.time()
    row = {"priority": "ROUTINE", **order}
    if accession and not row.get("filler_number"):
        row["filler_number"] = accession
    result = conn.execute(
        _INSERT_ORDER,
        dict(
            accession=accession or f"~{uuid.uuid4().hex[:15]}",
            patient_fk=patient_fk,
            visit_fk=visit_fk,
            status=Status.SCHEDULED,
            source=req.source,
            created_at=now,
            updated_at=now,
            **row,
        ),
    )
    order_fk = int(result.inserted_primary_key[0])
    if not accession:
        accession = f"MK{order_fk:08d}"
        _refuse_duplicate(conn, ris_order.c.accession, accession, "accession")
        numbers = {"accession": accession, "filler_number": row.get("filler_number") or accession}
        conn.execute(update(ris_order).where(ris_order.c.id == order_fk).values(**numbers))
    procedure_fk = _insert_procedure(conn, order_fk, accession, req)
    for number, step in enumerate(req.steps, start=1):
        _insert_step(conn, procedure_fk, accession, number, step, req)
    changes.append(f"order {accession} created ({len(req.steps)} step(s))")
    events.order_changed(accession)
    return accession


def change_order(conn: Connection, key: OrderKey, req: OrderRequest, changes: list[str]) -> str:
    """Change an order that has not started (HL7 XO, REST PUT): the fields given replace the
    stored ones; a step named by SPS ID (or the only step) is updated, others are added."""
    row = find_order(conn, key)
    if Status(row.status) not in EDITABLE:
        raise IllegalTransition(
            f"order {row.accession} is {row.status}; only SCHEDULED or ARRIVED orders change"
        )
    order = _clean_order(req)
    order.pop("accession", None)
    if req.patient.patient_id:
        order["patient_fk"] = upsert_patient(conn, req.patient, changes)
    if req.visit is not None:
        order["visit_fk"] = _visit(conn, order.get("patient_fk", row.patient_fk), req.visit)
    conn.execute(
        update(ris_order).where(ris_order.c.id == row.id).values(updated_at=time.time(), **order)
    )
    procedure = (
        conn.execute(select(ris_procedure).where(ris_procedure.c.order_fk == row.id))
    ).first()
    assert procedure is not None
    _update_procedure(conn, procedure.id, req)
    _change_steps(conn, procedure.id, row.accession, req)
    changes.append(f"order {row.accession} changed")
    events.order_changed(row.accession)
    return str(row.accession)


def set_order_status(conn: Connection, key: OrderKey, new: Status, changes: list[str]) -> str:
    """Move every open step of the order to ``new`` (cancel, discontinue, arrived, ...)."""
    row = find_order(conn, key)
    steps = _steps(conn, row.id)
    open_steps = [s for s in steps if Status(s.status) not in FINAL]
    if not open_steps:
        check_transition(Status(row.status), new, f"order {row.accession}")
    for step in open_steps:
        check_transition(Status(step.status), new, f"step {step.sps_id}")
    now = time.time()
    for step in open_steps:
        conn.execute(
            update(ris_sps).where(ris_sps.c.id == step.id).values(status=new, updated_at=now)
        )
    status = _refresh_order_status(conn, row.id)
    changes.append(f"order {row.accession} {row.status} → {status}")
    events.order_changed(row.accession)
    return str(row.accession)


def set_step_status(conn: Connection, sps_id: str, new: Status, changes: list[str]) -> str:
    """Move one step (MPPS, a technician's action); returns the order's accession."""
    step = conn.execute(select(ris_sps).where(ris_sps.c.sps_id == sps_id)).first()
    if step is None:
        raise NotFound(f"no scheduled procedure step {sps_id!r}", "sps_id")
    check_transition(Status(step.status), new, f"step {sps_id}")
    conn.execute(
        update(ris_sps).where(ris_sps.c.id == step.id).values(status=new, updated_at=time.time())
    )
    order_fk = (
        conn.execute(
            select(ris_procedure.c.order_fk).where(ris_procedure.c.id == step.procedure_fk)
        )
    ).scalar_one()
    _refresh_order_status(conn, order_fk)
    accession = (
        conn.execute(select(ris_order.c.accession).where(ris_order.c.id == order_fk))
    ).scalar_one()
    changes.append(f"step {sps_id} {step.status} → {new}")
    events.order_changed(accession)
    return str(accession)


def assign_room(conn: Connection, key: OrderKey, room: str, changes: list[str]) -> str:
    """Send the open steps of an order to a room of the catalogue (RIS-3.6); the station AE
    follows when the room has one device of the step's modality."""
    row = find_order(conn, key)
    if catalogue.room(conn, room) is None:
        raise UnknownCode(f"no room {room!r} in the catalogue", "room")
    now = time.time()
    for step in _steps(conn, row.id):
        if Status(step.status) in FINAL:
            continue
        station, _ = catalogue.station_for(conn, room, step.modality)
        values = {"room": room, "updated_at": now, **({"station_ae": station} if station else {})}
        conn.execute(update(ris_sps).where(ris_sps.c.id == step.id).values(**values))
    conn.execute(update(ris_order).where(ris_order.c.id == row.id).values(updated_at=now))
    changes.append(f"order {row.accession} room → {room}")
    events.order_changed(row.accession)
    return str(row.accession)


def find_order(conn: Connection, key: OrderKey) -> Any:
    """The order named by accession, else placer number (of that source), else filler."""
    column_values = (
        (ris_order.c.accession, key.accession, None),
        (ris_order.c.placer_number, key.placer_number, key.source),
        (ris_order.c.filler_number, key.filler_number, None),
    )
    for column, value, source in column_values:
        if not value:
            continue
        query = select(ris_order).where(column == value)
        if source is not None:
            query = query.where(ris_order.c.source == source)
        row = conn.execute(query.order_by(ris_order.c.id.desc())).first()
        if row is not None:
            return row
        break
    else:
        raise Missing("name the order: accession, placer or filler order number", "order")
    raise NotFound(f"no order with {key.describe()}", "order")


def get_order(conn: Connection, accession: str) -> dict[str, Any]:
    row = find_order(conn, OrderKey(accession=accession))
    return order_json(conn, row)


def order_json(conn: Connection, row: Any) -> dict[str, Any]:
    patient = conn.execute(select(ris_patient).where(ris_patient.c.id == row.patient_fk)).one()
    procedure = (
        conn.execute(select(ris_procedure).where(ris_procedure.c.order_fk == row.id))
    ).one()
    visit = None
    if row.visit_fk is not None:
        visit = conn.execute(select(ris_visit).where(ris_visit.c.id == row.visit_fk)).one()
    steps = [_step_json(s) for s in _steps(conn, row.id)]
    return _order_dict(row, patient, visit, procedure, steps, links.studies_of_order(conn, row.id))


def orders_json(conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
    """:func:`order_json` of many orders with six queries in all, not five per order (the
    waiting list shows up to 200: 1 000 statements took ~130 ms of the RIS thread)."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    patients = _by_id(conn, ris_patient, {row.patient_fk for row in rows})
    visits = _by_id(conn, ris_visit, {row.visit_fk for row in rows if row.visit_fk is not None})
    procedures = {p.order_fk: p for p in conn.execute(
        select(ris_procedure).where(ris_procedure.c.order_fk.in_(ids)))}  # fmt: skip
    steps: dict[int, list[dict[str, str]]] = {}
    query = (
        select(ris_sps, ris_procedure.c.order_fk.label("_order_fk"))
        .join(ris_procedure, ris_procedure.c.id == ris_sps.c.procedure_fk)
        .where(ris_procedure.c.order_fk.in_(ids))
        .order_by(ris_sps.c.id)
    )
    for step in conn.execute(query):
        steps.setdefault(step._order_fk, []).append(_step_json(step))
    studies = links.studies_of_orders(conn, ids)
    return [
        _order_dict(row, patients[row.patient_fk], visits.get(row.visit_fk),
                    procedures[row.id], steps.get(row.id, []), studies.get(row.id, []))
        for row in rows
    ]  # fmt: skip


def _by_id(conn: Connection, table: Any, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    return {row.id: row for row in conn.execute(select(table).where(table.c.id.in_(ids)))}


def _order_dict(
    row: Any, patient: Any, visit: Any, procedure: Any, steps: list[dict[str, str]],
    studies: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    return {
        "accession": row.accession,
        "placer_number": row.placer_number,
        "filler_number": row.filler_number,
        "status": row.status,
        "priority": row.priority,
        "ordering_physician": row.ordering_physician,
        "reason": row.reason,
        "source": row.source,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "patient": patient_json(patient),
        "visit": _visit_json(visit),
        "procedure": {
            "id": procedure.procedure_id,
            "service_code": procedure.service_code,
            "description": procedure.description,
            "study_uid": procedure.study_uid,
        },
        "steps": steps,
        "studies": studies,  # stored studies (RIS-3.8)
    }


def list_orders(
    conn: Connection,
    status: str = "",
    date: str = "",
    modality: str = "",
    station_ae: str = "",
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Orders with a step matching every filter given, newest first."""
    query = (
        select(ris_order)
        .distinct()
        .join(ris_procedure, ris_procedure.c.order_fk == ris_order.c.id)
        .join(ris_sps, ris_sps.c.procedure_fk == ris_procedure.c.id)
    )
    if status:
        query = query.where(ris_order.c.status == status)
    if date:
        query = query.where(ris_sps.c.start_date == date)
    if modality:
        query = query.where(ris_sps.c.modality == modality)
    if station_ae:
        query = query.where(ris_sps.c.station_ae == station_ae)
    rows = conn.execute(query.order_by(ris_order.c.id.desc()).limit(limit)).all()
    return orders_json(conn, rows)


# --- validation ------------------------------------------------------------------------------


def _clean_order(req: OrderRequest) -> dict[str, str]:
    data, out = req.order, {}
    if data.accession is not None:
        out["accession"] = validate.short_string(data.accession, "order.accession", 16)
    for name in ("placer_number", "filler_number"):
        if (value := getattr(data, name)) is not None:
            out[name] = validate.short_string(value, f"order.{name}", 64)
    if data.priority is not None:
        out["priority"] = _priority(data.priority)
    if data.ordering_physician is not None:
        out["ordering_physician"] = validate.person_name(
            data.ordering_physician, "order.ordering_physician"
        )
    if data.reason is not None:
        out["reason"] = validate.text(data.reason, "order.reason")
    return out


def _priority(value: str) -> str:
    value = value.strip().upper() or "ROUTINE"
    if value not in PRIORITIES:
        raise UnknownCode(
            f"order.priority must be one of {', '.join(PRIORITIES)}; got {value!r}",
            "order.priority",
        )
    return value


def _clean_visit(visit: VisitData) -> dict[str, str]:
    out: dict[str, str] = {}
    if visit.visit_number is not None:
        out["visit_number"] = validate.short_string(visit.visit_number, "visit.number", 64)
    if visit.patient_class is not None:
        value = visit.patient_class.strip().upper()
        if value not in PATIENT_CLASSES:
            raise UnknownCode(
                f"visit.patient_class must be I, O or E; got {value!r}", "visit.patient_class"
            )
        out["patient_class"] = value
    for name in ("location", "department"):
        if (value := getattr(visit, name)) is not None:
            out[name] = validate.short_string(value, f"visit.{name}", 128)
    if visit.referring_physician is not None:
        out["referring_physician"] = validate.person_name(
            visit.referring_physician, "visit.referring_physician"
        )
    return out


def _clean_step(step: StepData, prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if step.sps_id is not None:
        out["sps_id"] = validate.short_string(step.sps_id, f"{prefix}.sps_id", 16)
    if step.station_ae is not None:
        out["station_ae"] = validate.ae_title(step.station_ae, f"{prefix}.station_ae")
    if step.modality is not None:
        out["modality"] = validate.code_string(step.modality, f"{prefix}.modality")
    if step.start_date is not None:
        out["start_date"] = validate.date(step.start_date, f"{prefix}.start_date")
    if step.start_time is not None:
        out["start_time"] = validate.time_of_day(step.start_time, f"{prefix}.start_time")
    if step.room is not None:
        out["room"] = validate.short_string(step.room, f"{prefix}.room", 64)
    if step.performing_physician is not None:
        out["performing_physician"] = validate.person_name(
            step.performing_physician, f"{prefix}.performing_physician"
        )
    if step.description is not None:
        out["description"] = validate.text(step.description, f"{prefix}.description", 256)
    return out


# --- writes ----------------------------------------------------------------------------------


def _refuse_duplicate(conn: Connection, column: Any, value: str, label: str) -> None:
    found = conn.execute(_ID_BY[column], {"value": value}).first()
    if found is not None:
        raise Duplicate(f"{label} {value!r} is already used by another order", f"order.{label}")


def _refuse_duplicate_placer(conn: Connection, placer: str, source: str) -> None:
    found = conn.execute(_PLACER, {"placer": placer, "source": source}).first()
    if found is not None:
        raise Duplicate(
            f"placer order number {placer!r} already names order {found.accession}",
            "order.placer_number",
        )


def _visit(conn: Connection, patient_fk: int, visit: VisitData | None) -> int | None:
    if visit is None:
        return None
    values = _clean_visit(visit)
    if not any(values.values()):
        return None
    number = values.get("visit_number", "")
    if number:
        row = conn.execute(_VISIT, {"patient_fk": patient_fk, "number": number}).first()
        if row is not None:
            conn.execute(
                update(ris_visit)
                .where(ris_visit.c.id == row.id)
                .values(updated_at=time.time(), **values)
            )
            return int(row.id)
    result = conn.execute(
        _INSERT_VISIT, dict(patient_fk=patient_fk, updated_at=time.time(), **values)
    )
    return int(result.inserted_primary_key[0])


def _insert_procedure(conn: Connection, order_fk: int, accession: str, req: OrderRequest) -> int:
    proc = req.procedure
    code = validate.short_string(proc.service_code or "", "procedure.service_code", 64)
    description = validate.text(proc.description or "", "procedure.description", 256)
    if code and not description and (service := catalogue.service(conn, code)):
        description = service.name
    procedure_id = validate.short_string(proc.procedure_id or "", "procedure.id", 16)
    study_uid = validate.uid(proc.study_uid or "", "procedure.study_uid")
    result = conn.execute(
        _INSERT_PROCEDURE,
        dict(
            order_fk=order_fk,
            procedure_id=procedure_id or accession,
            service_code=code,
            description=description,
            study_uid=study_uid or uids.new_uid(),
        ),
    )
    return int(result.inserted_primary_key[0])


def _update_procedure(conn: Connection, procedure_fk: int, req: OrderRequest) -> None:
    proc, values = req.procedure, {}
    if proc.service_code is not None:
        values["service_code"] = validate.short_string(
            proc.service_code, "procedure.service_code", 64
        )
    if proc.description is not None:
        values["description"] = validate.text(proc.description, "procedure.description", 256)
    if proc.study_uid:
        values["study_uid"] = validate.uid(proc.study_uid, "procedure.study_uid")
    if values:
        conn.execute(
            update(ris_procedure).where(ris_procedure.c.id == procedure_fk).values(**values)
        )


def _insert_step(
    conn: Connection,
    procedure_fk: int,
    accession: str,
    number: int,
    step: StepData,
    req: OrderRequest,
) -> None:
    values = _clean_step(step, f"steps[{number - 1}]")
    values = _complete_step(conn, values, req, number - 1)
    sps_id = values.pop("sps_id", "") or (accession if number == 1 else f"{accession}-{number}")
    _refuse_duplicate(conn, ris_sps.c.sps_id, sps_id, "SPS ID")
    conn.execute(
        _INSERT_STEP,
        dict(
            procedure_fk=procedure_fk,
            sps_id=sps_id,
            status=Status.SCHEDULED,
            updated_at=time.time(),
            **values,
        ),
    )


def _complete_step(
    conn: Connection, values: dict[str, str], req: OrderRequest, index: int
) -> dict[str, str]:
    """Fill what the order left out: modality from the service, station from the room's
    device, description from the procedure, start from now."""
    service = None
    if req.procedure.service_code:
        service = catalogue.service(conn, req.procedure.service_code.strip())
    if not values.get("modality") and service is not None and service.modality:
        values["modality"] = service.modality
    if not values.get("modality"):
        raise Missing(
            f"steps[{index}].modality is required (the service is not in the catalogue "
            "with a modality)",
            f"steps[{index}].modality",
        )
    if not values.get("station_ae"):
        values["station_ae"], values["room"] = catalogue.station_for(
            conn, values.get("room", ""), values["modality"]
        )
    elif not values.get("room"):
        values["room"] = catalogue.room_of(conn, values["station_ae"])
    if not values.get("description"):
        values["description"] = req.procedure.description or (service.name if service else "")
    if not values.get("start_date"):
        now = time.localtime()
        values["start_date"] = time.strftime("%Y%m%d", now)
        values.setdefault("start_time", time.strftime("%H%M%S", now))
    return values


def _change_steps(conn: Connection, procedure_fk: int, accession: str, req: OrderRequest) -> None:
    existing = (
        conn.execute(
            select(ris_sps).where(ris_sps.c.procedure_fk == procedure_fk).order_by(ris_sps.c.id)
        )
    ).all()
    by_id = {row.sps_id: row for row in existing}
    for index, step in enumerate(req.steps):
        values = _clean_step(step, f"steps[{index}]")
        target = by_id.get(values.get("sps_id", ""))
        if target is None and len(existing) == 1 and len(req.steps) == 1:
            target = existing[0]
        if target is None:
            number = len(existing) + index + 1
            _insert_step(conn, procedure_fk, accession, number, step, req)
            continue
        if Status(target.status) not in EDITABLE:
            raise IllegalTransition(f"step {target.sps_id} is {target.status}; it cannot change")
        values.pop("sps_id", None)
        if values:
            conn.execute(
                update(ris_sps)
                .where(ris_sps.c.id == target.id)
                .values(updated_at=time.time(), **values)
            )


def _steps(conn: Connection, order_fk: int) -> list[Any]:
    query = (
        select(ris_sps)
        .join(ris_procedure, ris_procedure.c.id == ris_sps.c.procedure_fk)
        .where(ris_procedure.c.order_fk == order_fk)
        .order_by(ris_sps.c.id)
    )
    return list(conn.execute(query).all())


def _refresh_order_status(conn: Connection, order_fk: int) -> Status:
    status = order_status([Status(s.status) for s in _steps(conn, order_fk)])
    conn.execute(
        update(ris_order)
        .where(ris_order.c.id == order_fk)
        .values(status=status, updated_at=time.time())
    )
    return status


def _visit_json(visit: Any) -> dict[str, str] | None:
    if visit is None:
        return None
    return {
        "number": visit.visit_number,
        "patient_class": visit.patient_class,
        "location": visit.location,
        "department": visit.department,
        "referring_physician": visit.referring_physician,
    }


def _step_json(step: Any) -> dict[str, str]:
    return {
        "sps_id": step.sps_id,
        "status": step.status,
        "station_ae": step.station_ae,
        "modality": step.modality,
        "start_date": step.start_date,
        "start_time": step.start_time,
        "room": step.room,
        "performing_physician": step.performing_physician,
        "description": step.description,
    }
