"""Which order a stored study belongs to (RIS-3.8): link, unmatched list, re-coercion requests.

A study is linked to at most one order; an order may own several studies. An unmatched study
keeps the reason and, when the PatientID + modality + calling AE + time window rule found a
likely order, that order as a *suggestion* for a person to confirm (never linked on its own).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select, update

from mekong.shared.db import schema as t
from mekong.shared.db.recon_schema import LINKED, UNMATCHED, recon_study, recon_work
from mekong.shared.db.ris_schema import ris_order


def link_of(conn: Connection, study_uid: str) -> Any | None:
    return conn.execute(select(recon_study).where(recon_study.c.study_uid == study_uid)).first()


def link(
    conn: Connection, study_uid: str, order_fk: int, matched_by: str, linked_by: str = ""
) -> None:
    """Record ``study_uid`` as belonging to the order (replacing an unmatched entry)."""
    _save(conn, study_uid, state=LINKED, order_fk=order_fk, matched_by=matched_by,
          reason_code="", reason="", suggested_order_fk=None, linked_by=linked_by)  # fmt: skip


def unmatched(
    conn: Connection, study_uid: str, code: str, reason: str, suggested_fk: int | None
) -> None:
    _save(conn, study_uid, state=UNMATCHED, order_fk=None, matched_by="", reason_code=code,
          reason=reason, suggested_order_fk=suggested_fk)  # fmt: skip


def set_started_steps(conn: Connection, study_uid: str, sps_ids: Iterable[str]) -> None:
    conn.execute(update(recon_study).where(recon_study.c.study_uid == study_uid)
                 .values(started_steps=",".join(sps_ids), updated_at=time.time()))  # fmt: skip


def _save(conn: Connection, study_uid: str, **values: Any) -> None:
    now = time.time()
    if link_of(conn, study_uid) is None:
        conn.execute(recon_study.insert().values(study_uid=study_uid, created_at=now,
                                                 updated_at=now, **values))  # fmt: skip
    else:
        conn.execute(update(recon_study).where(recon_study.c.study_uid == study_uid)
                     .values(updated_at=now, **values))  # fmt: skip


def request_work(conn: Connection, study_uids: Iterable[str], reason: str) -> int:
    """Ask the reconciler to (re)coerce every stored instance of these studies with the
    values the RIS holds when it gets to them. Returns how many studies were queued."""
    now = time.time()
    count = 0
    for uid in sorted(set(study_uids)):
        found = conn.execute(select(recon_work.c.seq).where(recon_work.c.study_uid == uid))
        if found.first() is None:
            conn.execute(recon_work.insert().values(study_uid=uid, reason=reason, seq=1,
                                                    requested_at=now))  # fmt: skip
        else:
            conn.execute(update(recon_work).where(recon_work.c.study_uid == uid).values(
                reason=reason, seq=recon_work.c.seq + 1, requested_at=now))  # fmt: skip
        count += 1
    return count


def pending_work(conn: Connection, limit: int = 16) -> list[Any]:
    query = select(recon_work).order_by(recon_work.c.requested_at).limit(limit)
    return list(conn.execute(query))


def work_done(conn: Connection, study_uid: str, seq: int) -> None:
    """Remove the request unless a newer one arrived while it was carried out."""
    conn.execute(recon_work.delete().where(recon_work.c.study_uid == study_uid,
                                           recon_work.c.seq == seq))  # fmt: skip


def studies_of_order(conn: Connection, order_fk: int) -> list[dict[str, Any]]:
    """The stored studies linked to an order (for the order JSON)."""
    return studies_of_orders(conn, [order_fk]).get(order_fk, [])


def studies_of_orders(conn: Connection, order_fks: list[int]) -> dict[int, list[dict[str, Any]]]:
    """:func:`studies_of_order` of several orders in one query: {order id: studies}."""
    query = (
        select(
            recon_study,
            t.study.c.study_date,
            t.study.c.modalities,
            t.study.c.num_series,
            t.study.c.num_instances,
        )  # fmt: skip
        .join(t.study, t.study.c.study_uid == recon_study.c.study_uid, isouter=True)
        .where(recon_study.c.order_fk.in_(order_fks), recon_study.c.state == LINKED)
        .order_by(recon_study.c.id)
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for row in conn.execute(query):
        found.setdefault(row.order_fk, []).append({
            "study_uid": row.study_uid,
            "matched_by": row.matched_by,
            "linked_by": row.linked_by,
            "linked_at": row.updated_at,
            "study_date": row.study_date or "",
            "modalities": row.modalities or "",
            "num_series": row.num_series or 0,
            "num_instances": row.num_instances or 0,
        })  # fmt: skip
    return found


def linked_study_uids(conn: Connection, order_fk: int) -> tuple[str, ...]:
    query = (
        select(recon_study.c.study_uid)
        .where(recon_study.c.order_fk == order_fk, recon_study.c.state == LINKED)
        .order_by(recon_study.c.id)
    )
    return tuple(conn.execute(query).scalars())


def list_unmatched(conn: Connection, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Unmatched studies, newest first, with what the index knows of them."""
    suggested = ris_order.alias("suggested")
    query = (
        select(
            recon_study,
            t.study,
            t.patient.c.patient_id,
            t.patient.c.issuer,
            t.patient.c.name.label("patient_name"),
            suggested.c.accession.label("suggested_accession"),
        )  # fmt: skip
        .join(t.study, t.study.c.study_uid == recon_study.c.study_uid)
        .join(t.patient, t.patient.c.id == t.study.c.patient_fk)
        .join(suggested, suggested.c.id == recon_study.c.suggested_order_fk, isouter=True)
        .where(recon_study.c.state == UNMATCHED)
        .order_by(recon_study.c.created_at.desc(), recon_study.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_unmatched_json(row) for row in conn.execute(query)]


def count_unmatched(conn: Connection) -> int:
    query = select(func.count()).select_from(recon_study).where(recon_study.c.state == UNMATCHED)
    return int(conn.execute(query).scalar_one())


def _unmatched_json(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "study_uid": m["study_uid"],
        "reason_code": m["reason_code"],
        "reason": m["reason"],
        "suggested_accession": m["suggested_accession"],
        "patient_id": m["patient_id"],
        "issuer": m["issuer"],
        "patient_name": m["patient_name"],
        "accession": m["accession"],
        "study_date": m["study_date"],
        "study_time": m["study_time"],
        "description": m["description"],
        "modalities": m["modalities"],
        "num_series": m["num_series"],
        "num_instances": m["num_instances"],
        "detected_at": m["created_at"],
    }
