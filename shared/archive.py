"""The archive: the one path by which an instance becomes stored (DIMSE, STOW, imports).

Order of work, which is what makes an acknowledgement safe (see docs/architecture.md):
validate the bytes → write the blob durably → the index writer fsyncs folders and commits the
row (group commit) → only then does the caller answer success.

A blob is deleted only by the index writer's settlement of the store that wrote or found it
(see :mod:`mekong.shared.db.writer`), never here: a row must never point at a missing blob.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import mmap
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from mekong.shared.db.index import Index
from mekong.shared.db.writer import Outcome, Submission
from mekong.shared.dicom.header import InstanceRecord, InvalidInstance, parse_header, record_from
from mekong.shared.dicom.integrity import IncompleteDataset, check_complete
from mekong.shared.dicom.part10 import split_part10
from mekong.shared.storage.blobs import BlobStore, StoredBlob

log = logging.getLogger(__name__)
_COMMIT_TIMEOUT = 120.0


class Failure(Enum):
    INVALID = "invalid"  # the data: cannot be understood or lacks key attributes
    OUT_OF_RESOURCES = "out of resources"  # disk full or the index cannot be written
    INTERNAL = "internal error"


@dataclass(frozen=True)
class StoreResult:
    sop_uid: str = ""
    sop_class_uid: str = ""
    outcome: Outcome | None = None
    failure: Failure | None = None
    message: str = ""
    study_uid: str = ""
    patient_id: str = ""
    digest: str = ""  # SHA-256 of the stored bytes (for a duplicate: of the copy kept)

    @property
    def ok(self) -> bool:
        return self.failure is None


class Archive:
    def __init__(self, index: Index, blobs: BlobStore) -> None:
        self.index = index
        self.blobs = blobs

    async def store(self, part10: bytes, source: str = "") -> StoreResult:
        """Store from async code (STOW-RS, imports); blocking work runs in a thread."""
        return await asyncio.to_thread(self.store_blocking, part10, source)

    async def store_file(
        self, path: Path, source: str = "", digest: str | None = None
    ) -> StoreResult:
        """Store a finished Part 10 file without reading it into memory (long video): it is
        validated through ``mmap`` and renamed into the blob store, so ``path`` must be on the
        data directory's file system. The file is gone afterwards, stored or not."""
        return await asyncio.to_thread(self.store_file_blocking, path, source, digest)

    def store_file_blocking(
        self, path: Path, source: str = "", digest: str | None = None
    ) -> StoreResult:
        try:
            try:
                record = self._validate_file(path)
            except (InvalidInstance, IncompleteDataset) as exc:
                log.warning("refused instance from %s: %s", source or "?", exc)
                return StoreResult(failure=Failure.INVALID, message=str(exc))
            return self._guarded(
                record, source, lambda: self._submit(record, self.blobs.adopt(path, digest), source)
            )
        finally:
            path.unlink(missing_ok=True)

    def _validate_file(self, path: Path) -> InstanceRecord:
        with (
            open(path, "rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm,
        ):
            offset, syntax = split_part10(mm[: min(len(mm), 1024 * 1024)])
            view = memoryview(mm)
            try:
                check_complete(view[offset:], syntax)
            finally:
                view.release()
        try:
            return record_from(pydicom.dcmread(path, stop_before_pixels=True))
        except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInstance(f"dataset cannot be parsed: {exc}") from None

    def store_blocking(
        self, part10: bytes, source: str = "", expected_sop_uid: str | None = None
    ) -> StoreResult:
        """Store from a worker thread (DIMSE association threads). Never raises."""
        try:
            record = self._validate(part10, expected_sop_uid)
        except (InvalidInstance, IncompleteDataset) as exc:
            log.warning("refused instance from %s: %s", source or "?", exc)
            return StoreResult(failure=Failure.INVALID, message=str(exc))
        except Exception as exc:  # e.g. RecursionError from absurdly nested sequences
            log.warning("refused unreadable instance from %s: %r", source or "?", exc)
            message = f"dataset cannot be read: {type(exc).__name__}: {exc}"
            return StoreResult(failure=Failure.INVALID, message=message)
        return self._guarded(record, source, lambda: self._write(part10, record, source))

    def _guarded(
        self, record: InstanceRecord, source: str, write: Callable[[], StoreResult]
    ) -> StoreResult:
        """Run ``write`` (blob + index commit), mapping its failures to a StoreResult."""
        try:
            return write()
        except FutureTimeout:  # an OSError too: before that branch
            log.error("index commit of %s from %s timed out", record.sop_uid, source or "?")
            message = f"index commit took longer than {_COMMIT_TIMEOUT:.0f} s"
            return StoreResult(
                record.sop_uid, record.sop_class_uid, failure=Failure.OUT_OF_RESOURCES,
                message=message,
            )  # fmt: skip
        except OSError as exc:
            log.error("cannot store %s from %s: %s", record.sop_uid, source or "?", exc)
            failure = Failure.OUT_OF_RESOURCES if _is_resource_error(exc) else Failure.INTERNAL
            return StoreResult(
                record.sop_uid, record.sop_class_uid, failure=failure, message=str(exc)
            )
        except Exception as exc:
            log.exception("cannot store %s from %s", record.sop_uid, source or "?")
            message = f"index write failed: {getattr(exc, 'orig', None) or exc}"  # DB-API text
            return StoreResult(
                record.sop_uid,
                record.sop_class_uid,
                failure=Failure.OUT_OF_RESOURCES,
                message=message,
            )

    def _validate(self, part10: bytes, expected_sop_uid: str | None) -> InstanceRecord:
        offset, syntax = split_part10(part10)
        check_complete(memoryview(part10)[offset:], syntax)
        record = record_from(parse_header(part10))
        if expected_sop_uid and record.sop_uid != expected_sop_uid.strip():
            raise InvalidInstance(
                f"SOP Instance UID in the dataset ({record.sop_uid}) differs from the "
                f"Affected SOP Instance UID of the request ({expected_sop_uid})"
            )
        return record

    def _write(self, part10: bytes, record: InstanceRecord, source: str) -> StoreResult:
        blob = self.blobs.write(part10)  # held until the writer settles the submission
        return self._submit(record, blob, source)

    def _submit(self, record: InstanceRecord, blob: StoredBlob, source: str) -> StoreResult:
        assert self.index.writer is not None, "index writer not started"
        settle = functools.partial(self.blobs.release, blob.hold)
        submission = Submission(record, blob.digest, blob.size, blob.path, source[:16], settle)
        # On a timeout the submission stays queued and may still commit: its blob is left to
        # the writer's settlement, never deleted here.
        result = self.index.writer.submit_blocking(submission, timeout=_COMMIT_TIMEOUT)
        return StoreResult(
            record.sop_uid, record.sop_class_uid, outcome=result.outcome,
            study_uid=record.study_uid, patient_id=record.patient_id,
            digest=result.stored_digest or blob.digest,
        )  # fmt: skip


def _is_resource_error(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EMFILE, errno.ENFILE)
