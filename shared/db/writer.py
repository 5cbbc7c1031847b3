"""The index writer: the one task that changes archive rows, with group commit.

Every store (DIMSE thread or HTTP handler) submits its record and waits. The writer takes all
submissions waiting at that moment, fsyncs the blob folders they touched once, and commits them
in one transaction (one WAL fsync). A store is acknowledged only after that commit, so many
concurrent associations share the cost of durability. If a batch fails, each item is retried
alone so one bad record cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from mekong.shared.db import schema as t
from mekong.shared.db.upsert import upsert_returning_id
from mekong.shared.dicom.header import InstanceRecord
from mekong.shared.dicom.names import case_insensitive, folded_words
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


class Outcome(Enum):
    STORED = "stored"
    IDENTICAL_DUPLICATE = "identical duplicate"
    KEPT_FIRST = "duplicate with different content, first kept"
    REPLACED = "duplicate with different content, replaced"


@dataclass(frozen=True)
class Submission:
    record: InstanceRecord
    digest: str
    size: int
    blob_path: Path
    calling_ae: str = ""


@dataclass(frozen=True)
class WriteResult:
    outcome: Outcome
    unreferenced_digest: str | None = None  # blob no row points to any more: caller deletes it


class IndexWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        sync_dirs: Callable[[set[Path]], None],
        duplicate_policy: str = "keep_first",
        max_batch: int = 128,
    ) -> None:
        self._engine = engine
        self._sync_dirs = sync_dirs
        self._replace = duplicate_policy == "replace"
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Submission, asyncio.Future[WriteResult]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.committed = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="index-writer")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        await self._queue.join()
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, submission: Submission) -> WriteResult:
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((submission, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit_batch(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit_batch(
        self, batch: list[tuple[Submission, asyncio.Future[WriteResult]]]
    ) -> None:
        try:
            await asyncio.to_thread(self._sync_dirs, {s.blob_path for s, _ in batch})
            results = await self._transaction([s for s, _ in batch])
        except Exception:
            if len(batch) == 1:
                submission, future = batch[0]
                log.exception("index write failed for %s", submission.record.sop_uid)
                _resolve(future, exc=_last_exception())
                return
            for item in batch:  # isolate the failing item
                await self._commit_batch([item])
            return
        self.batches += 1
        self.committed += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            _resolve(future, result=result)

    async def _transaction(self, submissions: list[Submission]) -> list[WriteResult]:
        async with self._engine.begin() as conn:
            return [await self._apply(conn, s) for s in submissions]

    async def _apply(self, conn: AsyncConnection, sub: Submission) -> WriteResult:
        rec = sub.record
        existing = (
            await conn.execute(
                select(t.instance.c.id, t.instance.c.digest).where(
                    t.instance.c.sop_uid == rec.sop_uid
                )
            )
        ).first()
        if existing is not None:
            return await self._duplicate(conn, sub, existing.id, existing.digest)
        patient_fk = await self._upsert_patient(conn, rec)
        study_fk = await self._upsert_study(conn, rec, patient_fk)
        series_fk = await self._series_for(conn, rec, study_fk)
        await conn.execute(t.instance.insert().values(**_instance_values(sub), series_fk=series_fk))
        await conn.execute(
            update(t.series)
            .where(t.series.c.id == series_fk)
            .values(num_instances=t.series.c.num_instances + 1)
        )
        await conn.execute(
            update(t.study)
            .where(t.study.c.id == study_fk)
            .values(num_instances=t.study.c.num_instances + 1, updated_at=time.time())
        )
        return WriteResult(Outcome.STORED)

    async def _duplicate(
        self, conn: AsyncConnection, sub: Submission, row_id: int, old_digest: str
    ) -> WriteResult:
        if old_digest == sub.digest:
            log.info("identical duplicate of %s accepted", sub.record.sop_uid)
            return WriteResult(Outcome.IDENTICAL_DUPLICATE)
        if not self._replace:
            log.warning(
                "duplicate SOP Instance UID %s with different content from %s: first kept",
                sub.record.sop_uid,
                sub.calling_ae or "?",
            )
            return WriteResult(Outcome.KEPT_FIRST, unreferenced_digest=sub.digest)
        log.warning(
            "duplicate SOP Instance UID %s with different content from %s: replaced",
            sub.record.sop_uid,
            sub.calling_ae or "?",
        )
        values = _instance_values(sub)
        await conn.execute(update(t.instance).where(t.instance.c.id == row_id).values(**values))
        return WriteResult(Outcome.REPLACED, unreferenced_digest=old_digest)

    async def _upsert_patient(self, conn: AsyncConnection, rec: InstanceRecord) -> int:
        values = {
            "patient_id": rec.patient_id,
            "issuer": rec.issuer,
            "name": rec.patient_name,
            "name_ci": case_insensitive(rec.patient_name),
            "name_folded": folded_words(rec.patient_name),
            "birth_date": rec.birth_date,
            "sex": rec.sex,
        }
        return await upsert_returning_id(conn, t.patient, values, ["patient_id", "issuer"])

    async def _upsert_study(
        self, conn: AsyncConnection, rec: InstanceRecord, patient_fk: int
    ) -> int:
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
        return await upsert_returning_id(conn, t.study, values, ["study_uid"], keep=["patient_fk"])

    async def _series_for(self, conn: AsyncConnection, rec: InstanceRecord, study_fk: int) -> int:
        row = (
            await conn.execute(select(t.series.c.id).where(t.series.c.series_uid == rec.series_uid))
        ).first()
        if row is not None:
            return int(row.id)
        result = await conn.execute(
            t.series.insert().values(
                series_uid=rec.series_uid,
                study_fk=study_fk,
                modality=rec.modality,
                series_number=rec.series_number,
                description=rec.series_description,
                body_part=rec.body_part,
                series_date=rec.series_date,
                series_time=rec.series_time,
            )
        )
        await self._count_new_series(conn, study_fk, rec.modality)
        return int(result.inserted_primary_key[0])

    async def _count_new_series(self, conn: AsyncConnection, study_fk: int, modality: str) -> None:
        current = (
            await conn.execute(select(t.study.c.modalities).where(t.study.c.id == study_fk))
        ).scalar_one()
        modalities = [m for m in current.split("\\") if m]
        if modality and modality not in modalities:
            modalities.append(modality)
        await conn.execute(
            update(t.study)
            .where(t.study.c.id == study_fk)
            .values(num_series=t.study.c.num_series + 1, modalities="\\".join(sorted(modalities)))
        )


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


def _last_exception() -> BaseException:
    import sys

    return sys.exc_info()[1] or RuntimeError("index write failed")


def _resolve(
    future: asyncio.Future[WriteResult],
    result: WriteResult | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
