"""Content-addressed blob store: ``blobs/ab/cd/<sha256>``, written durably, never modified.

A write goes to ``tmp/``, is fsync'd, then renamed into place. The rename is made durable by
fsyncing the parent folder; the index writer does that once for a whole batch
(:meth:`BlobStore.sync_dirs`) just before it commits, so concurrent stores share those fsyncs.

:meth:`BlobStore.write` *holds* the blob until :meth:`BlobStore.release`: a store that found its
content already present relies on that file until its row is committed, so deletions made on
release skip held blobs (the last holder's release deletes it if it is still unreferenced).
A hold is a file in ``holds/`` and every check runs under an ``flock``, so the DICOM worker
processes of one node respect each other's holds too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mekong.shared.storage.files import file_digest, fsync_dir


def blob_path(root: Path, digest: str) -> Path:
    """Where blob ``digest`` lives under a ``blobs/`` folder (this store's, or a backup's)."""
    return root / digest[:2] / digest[2:4] / digest


@dataclass(frozen=True)
class StoredBlob:
    digest: str
    size: int
    path: Path
    created: bool  # False when identical content was already stored
    hold: Path  # released with BlobStore.release


class BlobStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "blobs"
        self.tmp = data_dir / "tmp"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.holds = data_dir / "holds"
        self.holds.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._new_shards: set[Path] = set()
        self._lock_file = data_dir / "blobs.lock"

    def path_for(self, digest: str) -> Path:
        return blob_path(self.root, digest)

    def write(self, data: bytes) -> StoredBlob:
        """Write ``data`` durably (file contents fsync'd; folder fsync left to the caller).

        The blob is held until :meth:`release` (also when it was already stored).
        """
        digest = hashlib.sha256(data).hexdigest()
        final = self.path_for(digest)
        hold = self.holds / f"{digest}.{os.getpid()}.{uuid.uuid4().hex}"
        with self._guard():
            hold.touch()
            exists = final.exists()
        if exists:
            return StoredBlob(digest, len(data), final, created=False, hold=hold)
        temp = self.tmp / uuid.uuid4().hex
        try:
            with open(temp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self._make_shard(final.parent)
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            self.release(hold)
            raise
        return StoredBlob(digest, len(data), final, created=True, hold=hold)

    def adopt(self, path: Path, digest: str | None = None) -> StoredBlob:
        """Make the finished file ``path`` a blob by renaming it into place (no copy): for
        objects too large to pass as bytes (long video). ``path`` must be on the data
        directory's file system; ``digest`` is its SHA-256 when the caller computed it while
        writing (else it is read). The file is fsync'd; it is gone afterwards either way.
        Held like :meth:`write`."""
        digest = digest or file_digest(path)
        final = self.path_for(digest)
        hold = self.holds / f"{digest}.{os.getpid()}.{uuid.uuid4().hex}"
        size = path.stat().st_size
        with self._guard():
            hold.touch()
            exists = final.exists()
        if exists:
            path.unlink()
            return StoredBlob(digest, size, final, created=False, hold=hold)
        try:
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
            self._make_shard(final.parent)
            os.replace(path, final)
        except BaseException:
            self.release(hold)
            raise
        return StoredBlob(digest, size, final, created=True, hold=hold)

    def release(self, hold: Path, unreferenced: Iterable[str] = ()) -> None:
        """End a hold taken by :meth:`write`, then delete the ``unreferenced`` blobs that no
        store in progress, in any process of the node, holds."""
        with self._guard():
            hold.unlink(missing_ok=True)
            self._delete_unheld(unreferenced)

    def free(self, digests: Iterable[str]) -> int:
        """Delete these blobs (reclamation) unless a store in progress holds one; returns how
        many files went."""
        with self._guard():
            return self._delete_unheld(digests)

    def _delete_unheld(self, digests: Iterable[str]) -> int:
        gone = 0
        for digest in digests:
            if any(self.holds.glob(f"{digest}.*")):
                continue
            path = self.path_for(digest)
            if path.exists():
                path.unlink()
                gone += 1
        return gone

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        with self._lock, open(self._lock_file, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def sync_dirs(self, paths: set[Path]) -> None:
        """Make the renames into these blobs' shard folders durable, and the shard folders
        created since the last call (their parents); each folder fsync'd once."""
        with self._lock:
            created, self._new_shards = self._new_shards, set()
        folders = {path.parent for path in paths} | {shard.parent for shard in created}
        if created:
            folders.add(self.root)
        for folder in folders:
            fsync_dir(folder)

    def _make_shard(self, shard: Path) -> None:
        if shard.is_dir():
            return
        shard.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._new_shards.add(shard)

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_for(digest).unlink()

    def read(self, digest: str) -> bytes:
        return self.path_for(digest).read_bytes()

    def digests_changed_since(self, since: float) -> list[str]:
        """Blobs in shard folders changed at or after ``since`` (a rename into a folder updates
        its mtime), so a start-up check reads only what the last run may have left behind."""
        found = []
        for top in _subdirs(self.root):
            if top.stat().st_mtime < since:
                continue
            for shard in _subdirs(top):
                if shard.stat().st_mtime >= since:
                    found += [entry.name for entry in os.scandir(shard) if entry.is_file()]
        return found

    def clean_tmp(self) -> int:
        """Remove leftovers of writes and holds interrupted by a crash (at node start, before
        any store); returns how many."""
        removed = 0
        for leftover in [*self.tmp.iterdir(), *self.holds.iterdir()]:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed += 1
        return removed


def _subdirs(folder: Path) -> list[Path]:
    return [Path(entry.path) for entry in os.scandir(folder) if entry.is_dir()]
