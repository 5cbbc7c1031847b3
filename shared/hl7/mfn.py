"""MFN master files (RIS-9.6): the HIS keeps the RIS catalogues in step.

| message | segment | RIS catalogue | fields |
|---|---|---|---|
| MFN^M02 | STF | staff | STF-1 (else STF-2, MFE-4) code, STF-3 name, STF-4 type, STF-7 department |
| MFN^M05 | LOC | department (LOC-3 ``D``) | LOC-1.1 code, LOC-2 name |
| MFN^M05 | LOC | room (other LOC-3) | LOC-1.2 code, LOC-1.1 department, LOC-2 name |
| MFN^M08 | OM1 | service | OM1-2.1 code, OM1-2.2 (else OM1-11) name, OM1-16 modality, |
| | | | OM1-24 processing time = BHYT minimum minutes |

MFE-1 ``MAD`` / ``MUP`` add or update, ``MDL`` / ``MDC`` remove. Devices (AE title, modality,
room) have no HL7 master file: ``mekong ris add device ...`` on the node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from mekong.shared.hl7 import patient as pid
from mekong.shared.hl7.errors import Hl7Error
from mekong.shared.hl7.message import Message
from mekong.shared.ris import catalogue

EVENTS = {"MAD": "upsert", "MUP": "upsert", "MDL": "delete", "MDC": "delete", "MAC": "upsert"}


def _staff(msg: Message, n: int) -> tuple[str, dict[str, Any]]:
    code = msg.get("STF", 1, occurrence=n) or msg.get("STF", 2, occurrence=n)
    values = {
        "code": code,
        "name": pid.person_name(msg, "STF", 3, n) or "",
        "role": msg.get("STF", 4, occurrence=n),
        "department": msg.get("STF", 7, occurrence=n),
    }
    return "staff", values


def _location(msg: Message, n: int) -> tuple[str, dict[str, Any]]:
    name = msg.get("LOC", 2, occurrence=n)
    if msg.get("LOC", 3, occurrence=n).upper() == "D":
        return "department", {"code": msg.get("LOC", 1, occurrence=n), "name": name}
    values = {
        "code": msg.get("LOC", 1, 2, occurrence=n),
        "department": msg.get("LOC", 1, occurrence=n),
        "name": name,
    }
    return "room", values


def _service(msg: Message, n: int) -> tuple[str, dict[str, Any]]:
    values = {
        "code": msg.get("OM1", 2, occurrence=n),
        "name": msg.get("OM1", 2, 2, occurrence=n) or msg.get("OM1", 11, occurrence=n),
        "modality": msg.get("OM1", 16, occurrence=n),
        "bhyt_min_minutes": msg.get("OM1", 24, occurrence=n),
    }
    return "service", values


SEGMENTS: dict[str, tuple[str, Callable[[Message, int], tuple[str, dict[str, Any]]]]] = {
    "M02": ("STF", _staff),
    "M05": ("LOC", _location),
    "M08": ("OM1", _service),
}


def apply(conn: Connection, msg: Message, event: str, changes: list[str]) -> None:
    segment, read = SEGMENTS[event]
    count = min(msg.segment_ids.count("MFE"), msg.segment_ids.count(segment))
    if not count:
        raise Hl7Error("AE", "100", f"MFN^{event} needs MFE and {segment} segments", "MFE-1",
                       "SEGMENT_MISSING")  # fmt: skip
    for n in range(1, count + 1):
        action = EVENTS.get(msg.get("MFE", 1, occurrence=n).upper())
        if action is None:
            raise Hl7Error("AE", "103", "MFE-1 must be MAD, MUP, MDL, MDC or MAC", "MFE-1",
                           "UNKNOWN_CODE")  # fmt: skip
        kind, values = read(msg, n)
        values["code"] = values.get("code") or msg.get("MFE", 4, occurrence=n)
        if action == "delete":
            removed = catalogue.delete_entry(conn, kind, values["code"])
            changes.append(f"{kind} {values['code']} {'removed' if removed else 'not found'}")
        else:
            done = catalogue.upsert_entry(conn, kind, values)
            changes.append(f"{kind} {values['code']} {done}")
