"""Partial resumable uploads at the hub (issue 6, PACS-19): large objects (video) arrive in
chunks that survive a cut link, a killed edge and a restarted hub.

``DATA/uploads/<id>.json`` says what the upload will be (SHA-256, size, who sends it);
``DATA/uploads/<id>.part`` holds the bytes received so far. Its length *is* the offset the hub
confirms: a chunk is written at the end and fsync'd before it is acknowledged, and a chunk that
fails half-way (disk full) is cut off again, so the file never holds bytes nobody was told
about. The id is derived from (sender, digest, size): asking again for the same object gives
the same upload, so an edge that lost its id still resumes. The folder is on the data
directory's file system, so a finished file is renamed into the blob store, never copied.
Partials without progress for ``max_age`` seconds are deleted by :class:`UploadJanitor`.

Everything here blocks (file I/O): callers run it in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mekong.shared.background import Background
from mekong.shared.storage.files import create_file, fsync_dir

log = logging.getLogger(__name__)
CHUNK_MAX = 64 * 1024 * 1024  # the largest PATCH body the hub takes
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Partial:
    id: str
    sha256: str
    size: int
    owner: str
    created_at: float
    received: int = 0  # bytes on disk now: the offset the next chunk must start at

    def public(self) -> dict[str, object]:
        return {"id": self.id, "sha256": self.sha256, "size": self.size, "offset": self.received,
                "created_at": self.created_at}  # fmt: skip


class OffsetMismatch(Exception):
    """A chunk that does not start where the received bytes end."""

    def __init__(self, received: int) -> None:
        super().__init__(f"the upload holds {received} bytes; a chunk must start there")
        self.received = received


class PartialStore:
    def __init__(self, data_dir: Path, max_age: float) -> None:
        self.folder = data_dir / "uploads"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_age = max_age
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def upload_id(owner: str, sha256: str, size: int) -> str:
        return hashlib.sha256(f"{owner}\n{sha256}\n{size}".encode()).hexdigest()[:32]

    def lock(self, upload_id: str) -> asyncio.Lock:
        """One request at a time per upload (a resumed edge may race its own dead request)."""
        return self._locks.setdefault(upload_id, asyncio.Lock())

    def part_path(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}.part"

    def _meta_path(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}.json"

    def open(self, owner: str, sha256: str, size: int) -> Partial:
        """The upload of this object by ``owner``: the one in progress, or a new empty one."""
        upload_id = self.upload_id(owner, sha256, size)
        found = self.get(upload_id, owner)
        if found is not None:
            return found
        partial = Partial(upload_id, sha256, size, owner, time.time())
        meta = {k: v for k, v in asdict(partial).items() if k != "received"}
        with contextlib.suppress(FileExistsError):  # a concurrent open made it: same content
            create_file(self._meta_path(upload_id), json.dumps(meta).encode())
        return self.get(upload_id, owner) or partial

    def get(self, upload_id: str, owner: str) -> Partial | None:
        """The upload with this id, if it exists and belongs to ``owner``."""
        if not _ID.fullmatch(upload_id):
            return None
        try:
            meta = json.loads(self._meta_path(upload_id).read_text())
        except (FileNotFoundError, ValueError):
            return None
        if meta.get("owner") != owner:
            return None
        part = self.part_path(upload_id)
        if not part.exists():  # a new upload, or one whose file was already stored
            part.touch()
            fsync_dir(self.folder)
        return Partial(**meta, received=part.stat().st_size)

    def owned_by(self, owner: str) -> list[Partial]:
        found = [self.get(path.stem, owner) for path in self.folder.glob("*.json")]
        return [partial for partial in found if partial is not None]

    def append(self, upload_id: str, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` (the current end) durably; returns the new length.
        A failed write (disk full) leaves the file as it was, and the error is raised."""
        fd = os.open(self.part_path(upload_id), os.O_WRONLY)
        try:
            received = os.fstat(fd).st_size
            if offset != received:
                raise OffsetMismatch(received)
            try:
                view = memoryview(data)
                while view:
                    written = os.pwrite(fd, view, offset + len(data) - len(view))
                    view = view[written:]
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, received)
                raise
            return received + len(data)
        finally:
            os.close(fd)

    def digest(self, upload_id: str) -> str:
        """SHA-256 (hex) of the received bytes."""
        digest = hashlib.sha256()
        with open(self.part_path(upload_id), "rb") as handle:
            while chunk := handle.read(8 * 1024 * 1024):
                digest.update(chunk)
        return digest.hexdigest()

    def discard(self, upload_id: str) -> None:
        """Forget an upload (stored, or refused): its description first, then its bytes."""
        self._meta_path(upload_id).unlink(missing_ok=True)
        self.part_path(upload_id).unlink(missing_ok=True)
        self._locks.pop(upload_id, None)

    def clean_stale(self, now: float | None = None) -> int:
        """Delete uploads without progress for ``max_age`` seconds, and leftovers of an
        interrupted :func:`create_file`; returns how many uploads went."""
        limit = (now or time.time()) - self.max_age
        removed = 0
        for meta in self.folder.glob("*.json"):
            part = self.part_path(meta.stem)
            with contextlib.suppress(FileNotFoundError):
                touched = max(meta.stat().st_mtime, part.stat().st_mtime if part.exists() else 0)
                if touched < limit:
                    log.info("hub: partial upload %s without progress since %s deleted",
                             meta.stem, time.ctime(touched))  # fmt: skip
                    self.discard(meta.stem)
                    removed += 1
        for leftover in self.folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        return removed


class UploadJanitor(Background):
    """Component: deletes stale partial uploads at start and then periodically."""

    name = "hub-uploads"

    def __init__(self, store: PartialStore) -> None:
        self.store = store

    async def start(self) -> None:
        await asyncio.to_thread(self.store.clean_stale)
        await super().start()

    async def _run(self) -> None:
        interval = min(3600.0, max(self.store.max_age / 4, 1.0))
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.store.clean_stale)
            except OSError as exc:
                log.warning("hub: cleaning partial uploads failed: %s", exc)
