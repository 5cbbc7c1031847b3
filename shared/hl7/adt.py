"""ADT^A08 / A31 (patient update) and ADT^A40 (merge) → RIS patients (RIS-9.5, PACS-6.3).

A08 updates the fields the PID carries (an empty field keeps the stored value, ``""`` clears
it) and creates the patient when the RIS does not know it yet. A40: each PID + MRG pair moves
the orders of MRG-1 to PID-3. Stored images follow through :mod:`mekong.shared.ris.pir`.
"""

from __future__ import annotations

from sqlalchemy import Connection

from mekong.shared.hl7 import patient as pid
from mekong.shared.hl7.errors import Hl7Error
from mekong.shared.hl7.message import Message
from mekong.shared.ris import patients


def update(conn: Connection, msg: Message, changes: list[str]) -> None:
    _require(msg, "PID")
    patients.upsert_patient(conn, pid.patient(msg), changes)
    if not changes:
        changes.append("no change")


def merge(conn: Connection, msg: Message, changes: list[str]) -> None:
    _require(msg, "PID")
    _require(msg, "MRG")
    for occurrence in range(1, msg.segment_ids.count("MRG") + 1):
        survivor = pid.patient(msg, min(occurrence, msg.segment_ids.count("PID")))
        prior = pid.prior_identifier(msg, occurrence)
        patients.merge_patients(conn, survivor, prior, changes)


def _require(msg: Message, segment: str) -> None:
    if segment not in msg.segment_ids:
        raise Hl7Error("AE", "100", f"the {segment} segment is missing", f"{segment}-1",
                       "SEGMENT_MISSING")  # fmt: skip
