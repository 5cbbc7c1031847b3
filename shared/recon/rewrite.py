"""Rewrite stored instances with a coercion, never losing or half-writing one (RIS-3.8).

Per instance: read its blob, build the coerced version in memory, write it as a new blob
(fsync'd, renamed into place, held), then hand a :class:`~mekong.shared.db.writer.Replacement`
to the index writer. The writer swaps the row to the new blob only if the row still points at
the version that was read, re-files the patient and study rows, marks the instance reconciled,
all in one commit; then it settles the old blob (deleted unless a store holds it). A crash
before that commit leaves the old row and blob intact and at most an orphan new blob, which
the next start removes. An instance already as wanted is only marked reconciled.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections import Counter
from collections.abc import Callable, Iterator

from mekong.shared.db.index import Index
from mekong.shared.db.pending import StoredInstance
from mekong.shared.db.writer import Outcome, Replacement, WriteResult
from mekong.shared.dicom.coerce import Coercion, coerce_instance
from mekong.shared.dicom.header import InstanceRecord
from mekong.shared.storage.blobs import BlobStore

log = logging.getLogger(__name__)
_BATCH_BYTES = 64 * 1024 * 1024  # coerced versions held in memory before a commit
_BATCH_COUNT = 32
_COMMIT_TIMEOUT = 120.0


class Rewriter:
    def __init__(self, index: Index, blobs: BlobStore) -> None:
        self.index = index
        self.blobs = blobs

    def apply(
        self,
        instances: list[StoredInstance],
        coercion: Coercion | None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> Counter[str]:
        """Coerce each instance (``None``: only mark them reconciled); counts by outcome.
        Between batches ``stopping()`` may end it early: the rest stays to do."""
        outcomes: Counter[str] = Counter()
        for batch in self._batches(instances, coercion):
            for result in self._commit(batch):
                outcomes[result] += 1
            if stopping():
                outcomes["postponed"] += 1
                break
        return outcomes

    def _batches(
        self, instances: list[StoredInstance], coercion: Coercion | None
    ) -> Iterator[list[Replacement]]:
        batch: list[Replacement] = []
        size = 0
        for stored in instances:
            replacement = self._prepare(stored, coercion)
            if replacement is None:
                continue
            batch.append(replacement)
            size += replacement.size if replacement.digest != stored.digest else 0
            if size >= _BATCH_BYTES or len(batch) >= _BATCH_COUNT:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    def _prepare(self, stored: StoredInstance, coercion: Coercion | None) -> Replacement | None:
        mark = Replacement(_bare(stored.sop_uid), stored.digest, stored.digest, 0,
                           self.blobs.path_for(stored.digest))  # fmt: skip
        if coercion is None:
            return mark
        path = self.blobs.path_for(stored.digest)
        try:
            own = dataclasses.replace(coercion, source=stored.calling_ae)
            coerced = coerce_instance(path, own)
        except FileNotFoundError:  # replaced meanwhile: the new version comes round again
            log.info("reconcile: %s changed while queued; skipped", stored.sop_uid)
            return None
        except Exception as exc:  # an instance pydicom cannot rewrite: keep it as received
            log.error("reconcile: cannot coerce %s (%s); left as received", stored.sop_uid, exc)
            return mark
        if coerced is None:
            return mark
        blob = self.blobs.write(coerced.data)
        return Replacement(
            coerced.record, stored.digest, blob.digest, blob.size, blob.path,
            previous_patient=(coerced.before.patient_id, coerced.before.issuer),
            settle=functools.partial(self.blobs.release, blob.hold), calling_ae=stored.calling_ae,
        )  # fmt: skip

    def _commit(self, batch: list[Replacement]) -> list[str]:
        writer = self.index.writer
        assert writer is not None, "index writer not started"
        results = writer.submit_all_blocking(batch, timeout=_COMMIT_TIMEOUT)
        return [_name(r, s) for r, s in zip(results, batch, strict=True)]


def _name(result: WriteResult | BaseException, replacement: Replacement) -> str:
    if isinstance(result, BaseException):
        log.error("reconcile: %s not swapped: %s", replacement.record.sop_uid, result)
        return "failed"
    if result.outcome == Outcome.CONFLICT:
        log.info("reconcile: %s changed meanwhile; comes round again", replacement.record.sop_uid)
    return {
        Outcome.COERCED: "coerced",
        Outcome.RECONCILED: "unchanged",
        Outcome.CONFLICT: "conflict",
        Outcome.BUSY: "busy",
    }.get(result.outcome, result.outcome.value)


def _bare(sop_uid: str) -> InstanceRecord:
    """The only part of a record a mark needs."""
    return InstanceRecord(sop_uid, "", "", "", "")
