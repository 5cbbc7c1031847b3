"""Reconciliation decisions, in the RIS transaction (RIS-3.8, FLOW-1/2, PACS-6).

The reconciler component (``mekong.shared.recon``) reads what a study says and rewrites
files; the decisions — link or list as unmatched, start and complete steps, notify the HIS,
queue the re-coercion of a study — are made here, one transaction each.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, select

from mekong.shared.db import schema as t
from mekong.shared.db.recon_schema import LINKED, UNMATCHED, recon_study
from mekong.shared.db.ris_schema import ris_order
from mekong.shared.ris import labels, links, matching, orders, workflow
from mekong.shared.ris.errors import IllegalTransition, NotFound
from mekong.shared.ris.matching import Match, NoMatch, StudyFacts, Window
from mekong.shared.ris.model import OrderKey
from mekong.shared.ris.status import Status


def reconcile_study(
    conn: Connection, facts: StudyFacts, window: Window, changes: list[str]
) -> Match | NoMatch:
    """Match a study seen for the first time (or again, while unmatched) and record the
    outcome: linked (steps started, HIS told) or unmatched with the reason."""
    result = matching.match_study(conn, facts, window)
    if isinstance(result, Match):
        attach(conn, facts.study_uid, result.order, result.by, result.sps_id, facts.modality,
               "", changes)  # fmt: skip
        _label_used(conn, facts, result)
    else:
        suggested = result.suggestion.id if result.suggestion is not None else None
        links.unmatched(conn, facts.study_uid, result.code, result.reason, suggested)
        changes.append(f"study {facts.study_uid} unmatched: {result.reason}")
    return result


def _label_used(conn: Connection, facts: StudyFacts, result: Match) -> None:
    """A study mapped by its label key: the key remembers the Patient ID it came with."""
    if result.by == "label":
        own_id = facts.patient_id if facts.label_attribute != "PatientID" else ""
        labels.note_use(conn, result.order, own_id)


def attach(
    conn: Connection, study_uid: str, order: Any, by: str, sps_id: str, modality: str,
    linked_by: str, changes: list[str],
) -> None:  # fmt: skip
    links.link(conn, study_uid, order.id, by, linked_by)
    changes.append(f"study {study_uid} linked to order {order.accession} by {by}")
    started = workflow.start_steps(conn, order.id, sps_id, modality, changes)
    links.set_started_steps(conn, study_uid, started)
    workflow.images_available(conn, order.id, changes)


def rematch(
    conn: Connection, facts: StudyFacts, window: Window, changes: list[str]
) -> Match | NoMatch | None:
    """Match an unmatched study again (orders changed); when it now links, all its stored
    instances are queued for coercion. None if it is no longer unmatched."""
    row = links.link_of(conn, facts.study_uid)
    if row is None or row.state != UNMATCHED:
        return None
    result = matching.match_study(conn, facts, window)
    if isinstance(result, Match):
        attach(conn, facts.study_uid, result.order, result.by, result.sps_id, facts.modality,
               "", changes)  # fmt: skip
        _label_used(conn, facts, result)
        links.request_work(conn, [facts.study_uid], "manual link")
    else:
        suggested = result.suggestion.id if result.suggestion is not None else None
        links.unmatched(conn, facts.study_uid, result.code, result.reason, suggested)
    return result


def link_by_hand(
    conn: Connection, study_uid: str, accession: str, user: str, changes: list[str]
) -> dict[str, Any]:
    """``POST /api/unmatched/{study}/link``: link an unmatched study to the order named by
    ``accession``; its stored instances are then coerced like an automatic match."""
    row = links.link_of(conn, study_uid)
    if row is None or row.state != UNMATCHED:
        if row is not None and row.state == LINKED:
            raise IllegalTransition(f"study {study_uid} is already linked to an order", "study")
        raise NotFound(f"study {study_uid} is not in the unmatched list", "study")
    order = orders.find_order(conn, OrderKey(accession=accession))
    if order.status == Status.CANCELLED:
        raise IllegalTransition(f"order {accession} is CANCELLED; images cannot be linked to it",
                                "accession")  # fmt: skip
    attach(conn, study_uid, order, "manual", "", _modality(conn, study_uid), user, changes)
    links.request_work(conn, [study_uid], "manual link")
    return orders.get_order(conn, order.accession)


def move_study(
    conn: Connection, study_uid: str, accession: str, user: str, changes: list[str]
) -> tuple[str, dict[str, Any]]:
    """Undo a wrong mapping (FEAT-5.5): the linked study goes to the order ``accession`` and its
    stored instances are coerced again to that order (a new Original Attributes item keeps
    what they said). Returns the accession it left and the new order. Steps the study had
    started on the old order stay IN_PROGRESS (a step cannot go back); a label key that mapped
    it forgets the Patient ID it came with, so the right patient's images are not refused."""
    row = links.link_of(conn, study_uid)
    if row is None or row.state != LINKED or row.order_fk is None:
        raise NotFound(f"study {study_uid} is not linked to an order (link it from the "
                       "unmatched list)", "study")  # fmt: skip
    order = orders.find_order(conn, OrderKey(accession=accession))
    if order.id == row.order_fk:
        raise IllegalTransition(f"study {study_uid} is already linked to order {accession}",
                                "accession")  # fmt: skip
    if order.status == Status.CANCELLED:
        raise IllegalTransition(f"order {accession} is CANCELLED; images cannot be moved to it",
                                "accession")  # fmt: skip
    old = conn.execute(select(ris_order).where(ris_order.c.id == row.order_fk)).one()
    if row.started_steps:
        changes.append(f"steps {row.started_steps} of order {old.accession} stay IN_PROGRESS")
    if row.matched_by == "label":
        labels.forget_use(conn, old.id)
    links.set_started_steps(conn, study_uid, [])
    changes.append(f"study {study_uid} moved from order {old.accession} to {order.accession}")
    attach(conn, study_uid, order, "manual", "", _modality(conn, study_uid), user, changes)
    links.request_work(conn, [study_uid], "manual link")
    return old.accession, orders.get_order(conn, order.accession)


def complete_idle(conn: Connection, idle_seconds: float, changes: list[str]) -> int:
    """Complete the steps the reconciler started for studies that received nothing for
    ``idle_seconds`` (modalities without MPPS). Returns how many studies were settled."""
    query = (
        select(recon_study.c.study_uid, recon_study.c.order_fk, recon_study.c.started_steps)
        .join(t.study, t.study.c.study_uid == recon_study.c.study_uid)
        .where(
            recon_study.c.state == LINKED,
            recon_study.c.started_steps != "",
            t.study.c.updated_at < time.time() - idle_seconds,
        )
    )
    rows = list(conn.execute(query))
    for row in rows:
        workflow.complete_steps(conn, row.order_fk, row.started_steps.split(","), changes)
        links.set_started_steps(conn, row.study_uid, [])
    return len(rows)


def unmatched_studies(conn: Connection, limit: int) -> list[str]:
    query = (
        select(recon_study.c.study_uid)
        .where(recon_study.c.state == UNMATCHED)
        .order_by(recon_study.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def _modality(conn: Connection, study_uid: str) -> str:
    query = select(t.study.c.modalities).where(t.study.c.study_uid == study_uid)
    modalities = conn.execute(query).scalar_one_or_none() or ""
    return modalities.split("\\")[0]
