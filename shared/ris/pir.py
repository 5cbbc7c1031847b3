"""Patient Information Reconciliation (IHE PIR, RAD-12): RIS patient changes reach the stored
DICOM images (PACS-6.1, PACS-6.3).

Called inside the transaction of the RIS change (ADT^A08, ADT^A40, REST PUT patient). They do
not rewrite files here: they queue the affected studies in ``recon_work`` — in the same
transaction, so the request survives a crash — and the reconciler rewrites every instance of
those studies with the values the RIS then holds (the originals kept in Original Attributes
Sequence, reason ``CORRECT``), through the index writer, which also updates the index rows
so C-FIND and QIDO answer with the new name or ID.

Affected studies: those linked to the patient's orders, and those filed in the archive under
the patient's identifier (Patient ID with the same Issuer, or with none) — also under the
identifiers of patients merged into this one.
"""

from __future__ import annotations

from sqlalchemy import Connection, or_, select

from mekong.shared.db import schema as t
from mekong.shared.db.recon_schema import LINKED, recon_study
from mekong.shared.db.ris_schema import ris_order, ris_patient
from mekong.shared.ris import links

_DICOM_FIELDS = frozenset({"name", "birth_date", "sex"})


def patient_updated(conn: Connection, patient_fk: int, changed: dict[str, str]) -> list[str]:
    """ADT^A08 / PUT patient: apply ``changed`` demographics to the patient's stored studies."""
    if not _DICOM_FIELDS & set(changed):
        return []
    return _queue(conn, _studies(conn, patient_fk), "patient update")


def patients_merged(conn: Connection, prior_fk: int, survivor_fk: int) -> list[str]:
    """ADT^A40: the prior patient's stored studies take the survivor's identity."""
    return _queue(conn, _studies(conn, survivor_fk), "patient merge")


def _queue(conn: Connection, study_uids: set[str], reason: str) -> list[str]:
    count = links.request_work(conn, study_uids, reason)
    if not count:
        return []
    return [f"{count} stored stud{'y' if count == 1 else 'ies'} queued for the {reason}"]


def _studies(conn: Connection, patient_fk: int) -> set[str]:
    identities = _identities(conn, patient_fk)
    found: set[str] = set()
    for patient_id, issuer in identities:
        query = (
            select(t.study.c.study_uid)
            .join(t.patient, t.patient.c.id == t.study.c.patient_fk)
            .where(t.patient.c.patient_id == patient_id,
                   or_(t.patient.c.issuer == issuer, t.patient.c.issuer == ""))
        )  # fmt: skip
        found.update(conn.execute(query).scalars())
    linked = (
        select(recon_study.c.study_uid)
        .join(ris_order, ris_order.c.id == recon_study.c.order_fk)
        .where(ris_order.c.patient_fk == patient_fk, recon_study.c.state == LINKED)
    )
    found.update(conn.execute(linked).scalars())
    return found


def _identities(conn: Connection, patient_fk: int) -> set[tuple[str, str]]:
    """The patient's (ID, issuer) and those of every patient merged into it."""
    identities: set[tuple[str, str]] = set()
    frontier = {patient_fk}
    seen: set[int] = set()
    while frontier:
        seen |= frontier
        rows = conn.execute(select(ris_patient).where(
            or_(ris_patient.c.id.in_(frontier), ris_patient.c.merged_into.in_(frontier))
        )).all()  # fmt: skip
        identities.update((r.patient_id, r.issuer) for r in rows)
        frontier = {r.id for r in rows} - seen
    return identities
