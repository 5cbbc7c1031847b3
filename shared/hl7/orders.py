"""ORM^O01 (v2.3.1) and OMI^O23 (v2.5.1, IHE RAD-4) → RIS orders (RIS-6.1, RIS-9.4).

Each ORC starts an order group; the OBR, TQ1, IPC and ZDS after it belong to it. ORC-1: NW new,
XO change, CA cancel, DC discontinue, SC status change (ORC-5). Field mapping (docs/hl7.md):

| RIS | ORM^O01 | OMI^O23 |
|---|---|---|
| accession | OBR-18 | OBR-18, else IPC-1 |
| requested procedure ID | OBR-19 | OBR-19, else IPC-2 |
| Study Instance UID | ZDS-1.1 | IPC-3, else ZDS-1.1 |
| SPS ID | OBR-20 | IPC-4 (one step per IPC) |
| modality | OBR-24 | IPC-5, else OBR-24 |
| station AE | OBR-21 | IPC-9 |
| room | — | IPC-8 |
| scheduled start | ORC-7.4, else OBR-27.4, else OBR-36 | TQ1-7, else as ORM |
| priority | ORC-7.6, else OBR-27.6 | TQ1-9, else as ORM |
| service | OBR-4 (code^name) | OBR-4 |
| placer / filler | ORC-2 / ORC-3 (else OBR-2 / OBR-3) | same |
| ordering physician | ORC-12, else OBR-16 | same |
| reason | OBR-31, else OBR-13 | same |
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mekong.shared.hl7 import patient as pid
from mekong.shared.hl7.errors import Hl7Error
from mekong.shared.hl7.message import Message
from mekong.shared.ris.model import (
    OrderData,
    OrderKey,
    OrderRequest,
    PatientData,
    ProcedureData,
    StepData,
)

CONTROLS = ("NW", "XO", "CA", "DC", "SC")
PRIORITIES = {"S": "STAT", "A": "HIGH", "T": "HIGH", "P": "MEDIUM", "C": "MEDIUM", "R": "ROUTINE"}
ORDER_STATUSES = {  # ORC-5, HL7 table 0038 → RIS status
    "SC": "SCHEDULED",
    "IP": "IN_PROGRESS",
    "CM": "COMPLETED",
    "DC": "DISCONTINUED",
    "CA": "CANCELLED",
    "A": "IN_PROGRESS",
}


@dataclass
class OrderGroup:
    control: str  # ORC-1
    key: OrderKey
    request: OrderRequest
    status: str = ""  # RIS status asked for by SC (ORC-5)


@dataclass
class _Occurrences:
    """Which occurrence (1-based) of each segment belongs to one ORC group."""

    orc: int
    segments: dict[str, list[int]] = field(default_factory=dict)

    def first(self, segment: str) -> int:
        return self.segments.get(segment, [0])[0]


def order_groups(msg: Message, source: str) -> list[OrderGroup]:
    groups = _group(msg)
    if not groups:
        raise Hl7Error("AE", "101", "an order message needs an ORC segment", "ORC-1",
                       "REQUIRED_FIELD_MISSING")  # fmt: skip
    return [_order_group(msg, group, source) for group in groups]


def _group(msg: Message) -> list[_Occurrences]:
    counts: dict[str, int] = {}
    groups: list[_Occurrences] = []
    for segment in msg.segment_ids:
        counts[segment] = counts.get(segment, 0) + 1
        if segment == "ORC":
            groups.append(_Occurrences(counts[segment]))
        elif groups and segment in ("OBR", "TQ1", "IPC", "ZDS"):
            groups[-1].segments.setdefault(segment, []).append(counts[segment])
    return groups


def _order_group(msg: Message, group: _Occurrences, source: str) -> OrderGroup:
    control = msg.get("ORC", 1, occurrence=group.orc).strip().upper()
    if control not in CONTROLS:
        raise Hl7Error("AE", "103", f"ORC-1 order control {control!r} is not supported; use "
                       f"{', '.join(CONTROLS)}", "ORC-1", "UNKNOWN_CODE")  # fmt: skip
    obr, ipc = group.first("OBR"), group.first("IPC")
    order = _order(msg, group, obr, ipc)
    key = OrderKey(order.accession or "", order.placer_number or "", order.filler_number or "",
                   source)  # fmt: skip
    request = OrderRequest(
        patient=pid.patient(msg) if "PID" in msg.segment_ids else _no_patient(control),
        order=order,
        procedure=_procedure(msg, group, obr, ipc),
        steps=_steps(msg, group, obr),
        visit=pid.visit(msg),
        source=source,
    )
    return OrderGroup(control, key, request, _status(msg, group, control))


def _no_patient(control: str) -> PatientData:
    """No PID: fine for CA / DC / SC (the order is named by ORC), required otherwise."""
    if control in ("NW", "XO"):
        raise Hl7Error("AE", "101", "PID-3 (patient identifier) is required", "PID-3",
                       "REQUIRED_FIELD_MISSING")  # fmt: skip
    return PatientData("")


def _order(msg: Message, group: _Occurrences, obr: int, ipc: int) -> OrderData:
    orc = group.orc
    return OrderData(
        accession=_first(msg.optional("OBR", 18, occurrence=obr) if obr else None,
                         msg.optional("IPC", 1, occurrence=ipc) if ipc else None),
        placer_number=_first(msg.optional("ORC", 2, occurrence=orc),
                             msg.optional("OBR", 2, occurrence=obr) if obr else None),
        filler_number=_first(msg.optional("ORC", 3, occurrence=orc),
                             msg.optional("OBR", 3, occurrence=obr) if obr else None),
        priority=_priority(msg, group, obr),
        ordering_physician=_first(pid.doctor(msg, "ORC", 12, orc),
                                  pid.doctor(msg, "OBR", 16, obr) if obr else None),
        reason=_first(_coded_text(msg, "OBR", 31, obr), msg.optional("OBR", 13, occurrence=obr)
                      if obr else None),
    )  # fmt: skip


def _procedure(msg: Message, group: _Occurrences, obr: int, ipc: int) -> ProcedureData:
    zds = group.first("ZDS")
    return ProcedureData(
        procedure_id=_first(msg.optional("OBR", 19, occurrence=obr) if obr else None,
                            msg.optional("IPC", 2, occurrence=ipc) if ipc else None),
        service_code=msg.optional("OBR", 4, occurrence=obr) if obr else None,
        description=msg.optional("OBR", 4, 2, occurrence=obr) if obr else None,
        study_uid=_first(msg.optional("IPC", 3, occurrence=ipc) if ipc else None,
                         msg.optional("ZDS", 1, occurrence=zds) if zds else None),
    )  # fmt: skip


def _steps(msg: Message, group: _Occurrences, obr: int) -> list[StepData]:
    date, time_ = _start(msg, group, obr)
    modality = msg.optional("OBR", 24, occurrence=obr) if obr else None
    ipcs = group.segments.get("IPC", [])
    if not ipcs:
        if not obr:
            return []
        return [StepData(
            sps_id=msg.optional("OBR", 20, occurrence=obr),
            station_ae=msg.optional("OBR", 21, occurrence=obr),
            modality=modality, start_date=date, start_time=time_,
        )]  # fmt: skip
    return [
        StepData(
            sps_id=msg.optional("IPC", 4, occurrence=n),
            station_ae=msg.optional("IPC", 9, occurrence=n),
            modality=msg.optional("IPC", 5, occurrence=n) or modality,
            room=msg.optional("IPC", 8, occurrence=n),
            description=msg.optional("IPC", 6, 2, occurrence=n),
            start_date=date,
            start_time=time_,
        )  # fmt: skip
        for n in ipcs
    ]


def _start(msg: Message, group: _Occurrences, obr: int) -> tuple[str | None, str | None]:
    tq1 = group.first("TQ1")
    value = _first(
        msg.optional("TQ1", 7, occurrence=tq1) if tq1 else None,
        msg.optional("ORC", 7, 4, occurrence=group.orc),
        msg.optional("OBR", 27, 4, occurrence=obr) if obr else None,
        msg.optional("OBR", 36, occurrence=obr) if obr else None,
    )
    if not value:
        return None, None
    return value[:8], value[8:14] or None


def _priority(msg: Message, group: _Occurrences, obr: int) -> str | None:
    tq1 = group.first("TQ1")
    code = _first(
        msg.optional("TQ1", 9, occurrence=tq1) if tq1 else None,
        msg.optional("ORC", 7, 6, occurrence=group.orc),
        msg.optional("OBR", 27, 6, occurrence=obr) if obr else None,
    )
    if code is None:
        return None
    return PRIORITIES.get(code.strip().upper(), code)


def _status(msg: Message, group: _Occurrences, control: str) -> str:
    if control != "SC":
        return ""
    code = msg.get("ORC", 5, occurrence=group.orc).strip().upper()
    if code not in ORDER_STATUSES:
        raise Hl7Error("AE", "103", f"ORC-5 order status {code!r} is not supported; use "
                       f"{', '.join(ORDER_STATUSES)}", "ORC-5", "UNKNOWN_CODE")  # fmt: skip
    return ORDER_STATUSES[code]


def _coded_text(msg: Message, segment: str, field_: int, occurrence: int) -> str | None:
    if not occurrence:
        return None
    return _first(msg.optional(segment, field_, 2, occurrence=occurrence),
                  msg.optional(segment, field_, 1, occurrence=occurrence))  # fmt: skip


def _first(*values: str | None) -> str | None:
    for value in values:
        if value is not None and value != "":
            return value
    return next((v for v in values if v is not None), None)
