"""The reconciler component (RIS-3.8, FLOW-1/2, PACS-6): off the receive path, after commit.

It runs on its own thread. A store is acknowledged as soon as its row commits; the row
carries ``recon = 0``, which is all the reconciler needs to find it — now (the main
process's index writer wakes it after each commit) or within ``recon.poll_seconds`` (commits of
the DICOM worker processes), or after a restart. Each pass:

1. studies in ``recon_work`` (manual link, ADT^A08 / A40): every instance rewritten with what
   the RIS holds now; the request is removed only if no newer one came meanwhile;
2. new instances, oldest first, grouped by study: a study seen for the first time is matched
   (``ris.reconcile``) — linked or listed as unmatched; instances of a linked study are coerced
   to the order's values, those of an unmatched study only marked seen;
3. every few seconds: steps the reconciler started are completed once their study has been
   idle ``recon.complete_after_idle_seconds``; unmatched studies are matched again when an
   order was created or changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection

from mekong.shared.audit.trail import AuditEvent
from mekong.shared.config import KeyDeviceConfig, ReconConfig
from mekong.shared.db import pending
from mekong.shared.db.index import Index
from mekong.shared.db.pending import StoredInstance
from mekong.shared.db.recon_schema import LINKED
from mekong.shared.dicom.coerce import COERCE, CORRECT, Coercion
from mekong.shared.dicom.header import parse_header
from mekong.shared.recon.facts import study_facts
from mekong.shared.recon.rewrite import Rewriter
from mekong.shared.ris import events, links, matching, reconcile, targets
from mekong.shared.ris.matching import Match, StudyFacts, Window
from mekong.shared.storage.blobs import BlobStore

log = logging.getLogger(__name__)
_BATCH = 512  # new instances of a study per pass
_PERIODIC_SECONDS = 5.0
_REMATCH_LIMIT = 200
_STOP_SECONDS = 60.0
UNMATCHED_NUDGE = "*unmatched*"  # the "changed" event's data when a study is left unmatched


class Reconciler:
    name = "reconciler"

    def __init__(
        self,
        index: Index,
        blobs: BlobStore,
        config: ReconConfig,
        audit: Callable[[AuditEvent], None] | None = None,
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.config = config
        self.window = Window(
            before=_minutes(config.suggest_before_minutes),
            after=_minutes(config.suggest_after_minutes),
        )
        self.rewriter = Rewriter(index, blobs)
        self.state = "stopped"
        self._audit = audit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_periodic = 0.0
        self._orders_seen = -1.0
        self.key_devices: dict[str, KeyDeviceConfig] = {}  # by AE title; the edge sets them

    def set_key_devices(self, devices: Iterable[KeyDeviceConfig]) -> None:
        """Modalities that carry a QR-label key (``[[edge.key_devices]]``, FEAT-5)."""
        self.key_devices = {d.ae_title.strip(): d for d in devices}

    # --- component ----------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)
        self._thread.start()
        self.state = "running"

    async def stop(self) -> None:
        """Finish the instance in hand; what is left stays marked and is done after restart."""
        self.state = "draining"
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, _STOP_SECONDS)
        self.state = "stopped"

    def wake(self) -> None:
        """Look for new work now (any thread; the index writer calls it after a commit)."""
        self._wake.set()

    # --- loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        _lower_priority()
        while not self._stopping.is_set():
            try:
                busy, settling = self.run_pass()
            except Exception:
                log.exception("reconciler: pass failed; trying again")
                busy, settling = False, None
            if busy:
                continue
            if settling is not None:  # a study is still arriving: do not wake at each commit
                self._stopping.wait(min(self.config.poll_seconds, settling))
                continue
            self._wake.wait(self.config.poll_seconds)
            self._wake.clear()

    def run_pass(self) -> tuple[bool, float | None]:
        """One pass: (progress made — the next follows at once, seconds until a study still
        receiving instances has settled, or None)."""
        progress = self._study_requests()
        new, settling = self._new_instances()
        if time.monotonic() >= self._next_periodic:
            self._next_periodic = time.monotonic() + _PERIODIC_SECONDS
            self._periodic()
        return progress or new, settling

    # --- 1. study-level requests --------------------------------------------------------

    def _study_requests(self) -> bool:
        requests = self.index.reading_blocking(lambda conn: links.pending_work(conn))
        done = 0
        for request in requests:
            if self._stopping.is_set():
                break
            outcomes = self._rewrite_study(request.study_uid, request.reason)
            if outcomes["postponed"] or outcomes["failed"] or outcomes["busy"]:
                continue  # the request stays: done again on the next pass or after restart
            self.index.transaction_blocking(
                lambda conn, r=request: links.work_done(conn, r.study_uid, r.seq)
            )
            done += 1
            log.info("reconcile: study %s (%s): %s", request.study_uid, request.reason,
                     _summary(outcomes))  # fmt: skip
        return done > 0

    def _rewrite_study(self, study_uid: str, reason: str) -> Counter[str]:
        instances = self.index.reading_blocking(
            lambda conn: pending.study_instances(conn, study_uid)
        )
        if not instances:
            return Counter()
        kind = COERCE if reason == "manual link" else CORRECT
        coercion = self.index.reading_blocking(
            lambda conn: self._coercion(conn, instances[0], kind)
        )
        return self.rewriter.apply(instances, coercion, self._stopping.is_set)

    def _coercion(self, conn: Connection, first: StoredInstance, kind: str) -> Coercion | None:
        """What a study must carry: its order's values when linked, else the patient's when
        the RIS knows the Patient ID (PIR), else nothing."""
        link = links.link_of(conn, first.study_uid)
        if link is not None and link.state == LINKED and link.order_fk is not None:
            step = link.started_steps.split(",")[0] if link.started_steps else ""
            return targets.order_coercion(conn, link.order_fk, step, first.modality, "", kind)
        facts = StudyFacts(first.study_uid, patient_id=first.patient_id, issuer=first.issuer)
        patient = matching.ris_patient_of(conn, facts)
        return targets.patient_coercion(patient) if patient is not None else None

    # --- 2. new instances ---------------------------------------------------------------

    def _new_instances(self) -> tuple[bool, float | None]:
        """A study seen for the first time is matched at once (the HIS hears of it); its
        instances are coerced (or marked) once it has received nothing for
        ``recon.settle_seconds``, so rewriting never competes with the study's own ingest."""
        studies = self.index.reading_blocking(pending.pending_studies)
        progress, settling = False, None
        for study in studies:
            if self._stopping.is_set():
                break
            progress = self._look_once(study.study_uid) or progress
            wait = study.updated_at + self.config.settle_seconds - time.time()
            if wait > 0:
                settling = wait if settling is None else min(settling, wait)
                continue
            outcomes = self._new_in_study(study.study_uid)
            progress = progress or any(k not in ("failed", "conflict", "busy") for k in outcomes)
        return progress, settling

    def _look_once(self, study_uid: str) -> bool:
        """Match a study the first time it is seen; True if it was new."""
        if self.index.reading_blocking(lambda conn: links.link_of(conn, study_uid)) is not None:
            return False
        first = self.index.reading_blocking(lambda conn: pending.first_instance(conn, study_uid))
        if first is None:
            return False
        self._first_look(first)
        return True

    def _new_in_study(self, study_uid: str) -> Counter[str]:
        instances = self.index.reading_blocking(
            lambda conn: pending.pending_of_study(conn, study_uid, _BATCH)
        )
        link = self.index.reading_blocking(lambda conn: links.link_of(conn, study_uid))
        coercion = None
        if instances and link is not None and link.state == LINKED:
            coercion = self.index.reading_blocking(
                lambda conn: self._coercion(conn, instances[0], COERCE)
            )
        outcomes = self.rewriter.apply(instances, coercion, self._stopping.is_set)
        if outcomes["coerced"]:
            log.info("reconcile: study %s: %s", study_uid, _summary(outcomes))
        return outcomes

    def _first_look(self, first: StoredInstance) -> None:
        """Match a study seen for the first time. A study whose first instance cannot be read,
        or whose matching fails, is listed as unmatched with that reason (a person sees it)."""
        facts = self._facts(first)
        if facts is None:
            self._unmatched(first, "UNREADABLE", "the study's first instance cannot be read")
            return
        changes: list[str] = []
        try:
            result = self.index.transaction_blocking(
                lambda conn: reconcile.reconcile_study(conn, facts, self.window, changes)
            )
        except Exception as exc:
            log.exception("reconcile: matching %s failed", first.study_uid)
            self._unmatched(first, "ERROR", f"matching failed: {exc}")
            return
        self._record(facts, result, changes)

    def _unmatched(self, first: StoredInstance, code: str, reason: str) -> None:
        self.index.transaction_blocking(
            lambda conn: links.unmatched(conn, first.study_uid, code, reason, None)
        )
        events.order_changed(UNMATCHED_NUDGE)

    def _facts(self, stored: StoredInstance) -> StudyFacts | None:
        try:
            header = parse_header(self.blobs.read(stored.digest))
            return study_facts(header, stored, self.key_devices)
        except Exception as exc:
            log.error("reconcile: cannot read %s (%s)", stored.sop_uid, exc)
            return None

    def _record(self, facts: StudyFacts, result: Any, changes: list[str]) -> None:
        matched = isinstance(result, Match)
        log.info("reconcile: %s", "; ".join(changes))
        detail: dict[str, Any] = {"changes": changes}
        if matched:
            detail.update(accession=result.order.accession, matched_by=result.by)
        else:
            detail.update(reason_code=result.code, reason=result.reason)
        if not matched:  # the console's waiting list shows the alert at once (FEAT-5.6)
            events.order_changed(UNMATCHED_NUDGE)
        action = "study.link" if matched else "study.unmatched"
        self._emit(AuditEvent("reconciler", "system", action, object=facts.study_uid,
                              patient_id=facts.patient_id[:64], detail=detail))  # fmt: skip

    def _emit(self, event: AuditEvent) -> None:
        if self._audit is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._audit, event)

    # --- 3. periodic --------------------------------------------------------------------

    def _periodic(self) -> None:
        if self.config.complete_after_idle_seconds > 0:
            changes: list[str] = []
            done = self.index.transaction_blocking(lambda conn: reconcile.complete_idle(
                conn, self.config.complete_after_idle_seconds, changes))  # fmt: skip
            if done:
                log.info("reconcile: %d idle stud(ies) completed: %s", done, "; ".join(changes))
        version = self.index.reading_blocking(pending.orders_version)
        if version != self._orders_seen:
            self._orders_seen = version
            self._rematch()

    def _rematch(self) -> None:
        """Orders changed: look again at the unmatched studies (newest first)."""
        uids = self.index.reading_blocking(
            lambda conn: reconcile.unmatched_studies(conn, _REMATCH_LIMIT)
        )
        for uid in uids:
            first = self.index.reading_blocking(lambda conn, u=uid: pending.first_instance(conn, u))
            facts = self._facts(first) if first is not None else None
            if facts is None:
                continue
            changes: list[str] = []
            result = self.index.transaction_blocking(
                lambda conn, f=facts, c=changes: reconcile.rematch(conn, f, self.window, c)
            )
            if isinstance(result, Match):
                self._record(facts, result, changes)


def _lower_priority() -> None:
    """Rewriting is background work: this thread yields the CPU to ingest (Linux nice 10)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _summary(outcomes: Counter[str]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(outcomes.items())) or "nothing to do"


def _minutes(value: int) -> dt.timedelta:
    return dt.timedelta(minutes=value)
