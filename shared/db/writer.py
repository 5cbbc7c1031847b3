"""The index writer: the one task that changes archive rows, with group commit.

Every store (DIMSE thread or HTTP handler) submits its record and waits. The writer thread takes
all submissions waiting at that moment, fsyncs the blob folders they touched once, and commits
them in one transaction (one WAL fsync). A store is acknowledged only after that commit, so many
concurrent associations share the cost of durability. If a batch fails, each item is retried
alone so one bad record cannot fail its neighbours.

Blobs that no row points to any more (the loser of a duplicate, the old version of a replaced
instance, the blob of a failed store) are handed back through ``Submission.settle`` on this
thread, right after the commit that decided it and before any later one. Deciding anywhere else
races with the next commit: with two versions of one instance arriving together under the
``replace`` policy, the row could end up pointing at the blob the other store had just deleted.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from sqlalchemy import Connection, Engine, bindparam, select, update

from mekong.shared.db import schema as t
from mekong.shared.db.schema_uplink import uplink_outbox as u
from mekong.shared.db.upsert import upsert_returning_id
from mekong.shared.dicom.header import InstanceRecord
from mekong.shared.dicom.names import case_insensitive, folded_words

log = logging.getLogger(__name__)

# Built once, executed with parameters: SQLAlchemy compiles each a single time.
_FIND_INSTANCE = select(t.instance.c.id, t.instance.c.digest).where(
    t.instance.c.sop_uid == bindparam("b_sop_uid")
)
_INSERT_INSTANCE = t.instance.insert()
_FIND_SERIES = select(t.series.c.id, t.series.c.study_fk).where(
    t.series.c.series_uid == bindparam("b_series_uid")
)
_INSERT_SERIES = t.series.insert()
_COUNT_SERIES = (
    update(t.series)
    .where(t.series.c.id == bindparam("b_id"))
    .values(num_instances=t.series.c.num_instances + bindparam("b_delta"))
)
_COUNT_STUDY = (
    update(t.study)
    .where(t.study.c.id == bindparam("b_id"))
    .values(
        num_instances=t.study.c.num_instances + bindparam("b_delta"), updated_at=bindparam("b_now")
    )
)
# An edge's uplink rows of a rewritten instance: the ones not yet sent follow the new blob
# (the old one is deleted); while a row is being sent the rewrite waits (Outcome.BUSY).
_UPLINK_SENDING = select(u.c.id).where(u.c.instance_fk == bindparam("b_id"), u.c.state == "sending")
_UPLINK_FOLLOW = (
    update(u)
    .where(u.c.instance_fk == bindparam("b_id"), u.c.state.in_(("queued", "dead")))
    .values(digest=bindparam("b_digest"), size=bindparam("b_size"))
)
_STUDY_MODALITIES = select(t.study.c.modalities).where(t.study.c.id == bindparam("b_id"))
_COUNT_NEW_SERIES = (
    update(t.study)
    .where(t.study.c.id == bindparam("b_id"))
    .values(num_series=t.study.c.num_series + 1, modalities=bindparam("b_modalities"))
)


class Outcome(Enum):
    STORED = "stored"
    IDENTICAL_DUPLICATE = "identical duplicate"
    KEPT_FIRST = "duplicate with different content, first kept"
    REPLACED = "duplicate with different content, replaced"
    COERCED = "coerced version swapped in"  # a Replacement committed
    RECONCILED = "already as wanted, marked reconciled"  # a Replacement with the same blob
    CONFLICT = "changed meanwhile, replacement dropped"  # the row moved on: nothing written
    BUSY = "being sent by the uplink, replacement dropped"  # try again later


@dataclass(frozen=True)
class Submission:
    record: InstanceRecord
    digest: str
    size: int
    blob_path: Path
    calling_ae: str = ""
    # Called on the writer thread once this submission is committed or has failed, with the
    # digests no instance row points to any more (their blobs may be deleted); see above.
    settle: Callable[[set[str]], None] | None = None


@dataclass(frozen=True)
class WriteResult:
    outcome: Outcome
    unreferenced_digest: str | None = None  # blob this commit left without a row
    stored_digest: str = ""  # SHA-256 of the bytes the index now holds for this SOP UID


@dataclass(frozen=True)
class Replacement:
    """A rewritten version of a stored instance (coercion on reconciliation, PIR update).

    Committed only if the instance row still points at ``old_digest``: then the row takes the
    new blob, the patient and study rows are re-filed from ``record`` (the study moves to the
    record's patient; the ``previous_patient`` row goes when no study is left on it) and the
    instance is marked reconciled, all in the batch's one commit; the old blob is settled as
    unreferenced. With ``digest == old_digest`` only the mark is written. Otherwise (the row
    was replaced or removed meanwhile) nothing changes and the new blob is settled.
    """

    record: InstanceRecord
    old_digest: str
    digest: str
    size: int
    blob_path: Path
    previous_patient: tuple[str, str] = ("", "")  # (PatientID, Issuer) before the rewrite
    settle: Callable[[set[str]], None] | None = None
    calling_ae: str = ""


_Item = tuple["Submission | Replacement", "Future[WriteResult]"]


class IndexWriter:
    """Group-committing writer on its own thread (sync SQLAlchemy Core on the same database).

    It runs outside the event loop on purpose: through aiosqlite every statement is a thread
    round trip (~27 per stored instance, measured 9.3 ms per one-instance transaction); here a
    whole batch is one call (~1 ms). Queries stay async on the node's engine.
    """

    def __init__(
        self,
        engine: Engine,
        sync_dirs: Callable[[set[Path]], None],
        duplicate_policy: str = "keep_first",
        max_batch: int = 128,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        # called on this thread after each commit that stored or replaced an instance: wakes
        # the reconciler (which also polls, for the commits of other processes)
        self._on_commit = on_commit
        self._sync_dirs = sync_dirs
        self._replace = duplicate_policy == "replace"
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="index-writer", daemon=True)
        self.batches = 0
        self.committed = 0
        self._busy_since: float | None = None  # monotonic start of the batch being committed

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()
        self._engine.dispose()

    def submit_blocking(
        self, submission: Submission | Replacement, timeout: float | None = None
    ) -> WriteResult:
        """Queue a record and wait until it is committed (for worker threads)."""
        return self._enqueue(submission).result(timeout)

    def submit_all_blocking(
        self, submissions: list[Replacement], timeout: float | None = None
    ) -> list[WriteResult | BaseException]:
        """Queue several at once (they share commits) and wait for all; a failure is
        returned in its place, not raised."""
        futures = [self._enqueue(s) for s in submissions]
        results: list[WriteResult | BaseException] = []
        for future in futures:
            try:
                results.append(future.result(timeout))
            except Exception as exc:
                results.append(exc)
        return results

    async def submit(self, submission: Submission) -> WriteResult:
        """Queue a record and wait until it is committed (for coroutines)."""
        return await asyncio.wrap_future(self._enqueue(submission))

    def _enqueue(self, submission: Submission | Replacement) -> Future[WriteResult]:
        future: Future[WriteResult] = Future()
        self._queue.put((submission, future))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self._max_batch:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(following)
            self._busy_since = time.monotonic()
            try:
                self._commit_batch(batch)
            except BaseException as exc:  # never leave a store waiting, never die
                log.exception("index writer: unexpected failure")
                for _, future in batch:
                    _resolve(future, exc=exc)
            finally:
                self._busy_since = None

    def problem(self, stuck_after: float) -> str | None:
        """Why the writer cannot commit (the systemd watchdog's check), or None."""
        if not self._thread.is_alive():
            return "the index writer thread has died"
        since = self._busy_since
        if since is not None and time.monotonic() - since > stuck_after:
            return f"the index writer is stuck in one commit for {time.monotonic() - since:.0f} s"
        return None

    def _commit_batch(self, batch: list[_Item]) -> None:
        try:
            self._sync_dirs({s.blob_path for s, _ in batch})
            with self._engine.begin() as conn:
                results = [self._apply(conn, s) for s, _ in batch]
        except Exception as exc:
            if len(batch) == 1:
                submission, future = batch[0]
                log.exception("index write failed for %s", submission.record.sop_uid)
                self._settle(submission, {submission.digest})
                _resolve(future, exc=exc)
                return
            for item in batch:  # isolate the failing item
                self._commit_batch([item])
            return
        self.batches += 1
        self.committed += len(batch)
        for (submission, future), result in zip(batch, results, strict=True):
            unreferenced = result.unreferenced_digest
            self._settle(submission, {unreferenced} if unreferenced else set())
            _resolve(future, result)
        if self._on_commit is not None and any(r.outcome in _NEW for r in results):
            try:
                self._on_commit()
            except Exception:
                log.exception("index writer: commit listener failed")

    def _settle(self, sub: Submission | Replacement, candidates: set[str]) -> None:
        """Tell the submitter which of ``candidates`` no row points to (checked, not assumed:
        a failed store's blob may be an identical copy of a committed one)."""
        if sub.settle is None:
            return
        unreferenced: set[str] = set()
        if candidates:
            try:
                with self._engine.connect() as conn:
                    used = conn.execute(
                        select(t.instance.c.digest).where(t.instance.c.digest.in_(candidates))
                    ).scalars()
                    unreferenced = candidates - set(used)
            except Exception:
                log.warning("cannot check blobs %s against the index: kept", candidates)
        try:
            sub.settle(unreferenced)
        except Exception:
            log.exception("releasing the blob of %s failed", sub.record.sop_uid)

    def _apply(self, conn: Connection, sub: Submission | Replacement) -> WriteResult:
        if isinstance(sub, Replacement):
            return self._replace_version(conn, sub)
        rec = sub.record
        existing = conn.execute(_FIND_INSTANCE, {"b_sop_uid": rec.sop_uid}).first()
        if existing is not None:
            return self._duplicate(conn, sub, existing.id, existing.digest)
        series_fk, study_fk = self._file(conn, rec)
        conn.execute(_INSERT_INSTANCE, {**_instance_values(sub), "series_fk": series_fk})
        self._count(conn, series_fk, study_fk, +1)
        return WriteResult(Outcome.STORED, stored_digest=sub.digest)

    def _file(self, conn: Connection, rec: InstanceRecord) -> tuple[int, int]:
        """Upsert the patient and study, find or create the series: (series id, its study id)."""
        patient_fk = self._upsert_patient(conn, rec)
        study_fk = self._upsert_study(conn, rec, patient_fk)
        series_fk, series_study_fk = self._series_for(conn, rec, study_fk)
        if series_study_fk != study_fk:  # the series UID is already filed under another study
            log.warning(
                "series %s of %s already belongs to another study than %s: counted there",
                rec.series_uid, rec.sop_uid, rec.study_uid,
            )  # fmt: skip
        return series_fk, series_study_fk  # counters then equal the real row counts

    def _count(self, conn: Connection, series_fk: int, study_fk: int, delta: int) -> None:
        conn.execute(_COUNT_SERIES, {"b_id": series_fk, "b_delta": delta})
        conn.execute(_COUNT_STUDY, {"b_id": study_fk, "b_delta": delta, "b_now": time.time()})

    def _duplicate(
        self, conn: Connection, sub: Submission, row_id: int, old_digest: str
    ) -> WriteResult:
        if old_digest == sub.digest:
            log.info("identical duplicate of %s accepted", sub.record.sop_uid)
            return WriteResult(Outcome.IDENTICAL_DUPLICATE, stored_digest=sub.digest)
        action = "replaced" if self._replace else "first kept"
        log.warning(
            "duplicate SOP Instance UID %s with different content from %s: %s",
            sub.record.sop_uid, sub.calling_ae or "?", action,
        )  # fmt: skip
        if not self._replace:
            return WriteResult(
                Outcome.KEPT_FIRST, unreferenced_digest=sub.digest, stored_digest=old_digest
            )
        # The new version's header wins everywhere, its series and study included.
        old_series_fk, old_study_fk = conn.execute(
            select(t.instance.c.series_fk, t.series.c.study_fk)
            .join(t.series, t.series.c.id == t.instance.c.series_fk)
            .where(t.instance.c.id == row_id)
        ).one()
        series_fk, study_fk = self._file(conn, sub.record)
        values = {**_instance_values(sub), "series_fk": series_fk, "recon": 0}  # reconcile anew
        conn.execute(update(t.instance).where(t.instance.c.id == row_id).values(**values))
        if series_fk != old_series_fk:
            self._count(conn, old_series_fk, old_study_fk, -1)
            self._count(conn, series_fk, study_fk, +1)
        return WriteResult(
            Outcome.REPLACED, unreferenced_digest=old_digest, stored_digest=sub.digest
        )

    def _replace_version(self, conn: Connection, sub: Replacement) -> WriteResult:
        row = conn.execute(_FIND_INSTANCE, {"b_sop_uid": sub.record.sop_uid}).first()
        if row is None or row.digest != sub.old_digest:
            new = sub.digest if sub.digest != sub.old_digest else None
            return WriteResult(Outcome.CONFLICT, unreferenced_digest=new)
        if sub.digest == sub.old_digest:
            conn.execute(update(t.instance).where(t.instance.c.id == row.id).values(recon=1))
            return WriteResult(Outcome.RECONCILED)
        if conn.execute(_UPLINK_SENDING, {"b_id": row.id}).first() is not None:
            return WriteResult(Outcome.BUSY, unreferenced_digest=sub.digest)
        patient_fk = self._upsert_patient(conn, sub.record)
        study_fk = self._upsert_study(conn, sub.record, patient_fk)
        conn.execute(update(t.study).where(t.study.c.id == study_fk).values(patient_fk=patient_fk))
        values = {
            "digest": sub.digest,
            "size": sub.size,
            "transfer_syntax": sub.record.transfer_syntax,
            "recon": 1,
        }
        conn.execute(update(t.instance).where(t.instance.c.id == row.id).values(**values))
        conn.execute(_UPLINK_FOLLOW, {"b_id": row.id, "b_digest": sub.digest, "b_size": sub.size})
        self._drop_empty_patient(conn, sub.previous_patient, patient_fk)
        return WriteResult(Outcome.COERCED, unreferenced_digest=sub.old_digest)

    @staticmethod
    def _drop_empty_patient(conn: Connection, key: tuple[str, str], keep: int) -> None:
        """Remove the patient row the instance left if no study is filed under it any more
        (after a merge the old Patient ID must no longer answer C-FIND / QIDO)."""
        patient_id, issuer = key
        row = conn.execute(
            select(t.patient.c.id).where(
                t.patient.c.patient_id == patient_id, t.patient.c.issuer == issuer
            )
        ).first()
        if row is None or row.id == keep:
            return
        in_use = conn.execute(select(t.study.c.id).where(t.study.c.patient_fk == row.id).limit(1))
        if in_use.first() is None:
            conn.execute(t.patient.delete().where(t.patient.c.id == row.id))

    def _upsert_patient(self, conn: Connection, rec: InstanceRecord) -> int:
        values = {
            "patient_id": rec.patient_id,
            "issuer": rec.issuer,
            "name": rec.patient_name,
            "name_ci": case_insensitive(rec.patient_name),
            "name_folded": folded_words(rec.patient_name),
            "birth_date": rec.birth_date,
            "sex": rec.sex,
        }
        return upsert_returning_id(conn, t.patient, values, ("patient_id", "issuer"))

    def _upsert_study(self, conn: Connection, rec: InstanceRecord, patient_fk: int) -> int:
        values = {
            "study_uid": rec.study_uid,
            "patient_fk": patient_fk,
            "study_date": rec.study_date,
            "study_time": rec.study_time,
            "accession": rec.accession,
            "study_id": rec.study_id,
            "referring_physician": rec.referring_physician,
            "description": rec.study_description,
            "charset": rec.charset,
            "updated_at": time.time(),
        }
        return upsert_returning_id(conn, t.study, values, ("study_uid",), keep=("patient_fk",))

    def _series_for(self, conn: Connection, rec: InstanceRecord, study_fk: int) -> tuple[int, int]:
        """(series id, id of the study it belongs to), the series created when new."""
        row = conn.execute(_FIND_SERIES, {"b_series_uid": rec.series_uid}).first()
        if row is not None:
            return int(row.id), int(row.study_fk)
        values = {
            "series_uid": rec.series_uid,
            "study_fk": study_fk,
            "modality": rec.modality,
            "series_number": rec.series_number,
            "description": rec.series_description,
            "body_part": rec.body_part,
            "series_date": rec.series_date,
            "series_time": rec.series_time,
        }
        result = conn.execute(_INSERT_SERIES, values)
        self._count_new_series(conn, study_fk, rec.modality)
        return int(result.inserted_primary_key[0]), study_fk

    def _count_new_series(self, conn: Connection, study_fk: int, modality: str) -> None:
        current = conn.execute(_STUDY_MODALITIES, {"b_id": study_fk}).scalar_one()
        modalities = [m for m in current.split("\\") if m]
        if modality and modality not in modalities:
            modalities.append(modality)
        new = {"b_id": study_fk, "b_modalities": "\\".join(sorted(modalities))}
        conn.execute(_COUNT_NEW_SERIES, new)


_NEW = (Outcome.STORED, Outcome.REPLACED)


def _instance_values(sub: Submission) -> dict[str, object]:
    rec = sub.record
    return {
        "sop_uid": rec.sop_uid,
        "sop_class_uid": rec.sop_class_uid,
        "instance_number": rec.instance_number,
        "transfer_syntax": rec.transfer_syntax,
        "digest": sub.digest,
        "size": sub.size,
        "num_frames": rec.num_frames,
        "rows": rec.rows,
        "columns": rec.columns,
        "calling_ae": sub.calling_ae,
        "received_at": time.time(),
    }


def _resolve(
    future: Future[WriteResult], result: WriteResult | None = None, exc: BaseException | None = None
) -> None:
    """Complete a submitter's future; one already cancelled (its waiter gone) is skipped."""
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)  # type: ignore[arg-type]
    except InvalidStateError:
        pass
