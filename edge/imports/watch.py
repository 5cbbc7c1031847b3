"""Watch folders: files a non-DICOM device drops are imported once they are complete
(RIS-5.7, RIS-6.8, FEAT-2.2).

A file is taken when its size and modification time have not changed for
``stable_seconds`` — or for one second after the writer closed it (inotify close-write through
watchdog), whichever comes first — so a file still being written is never taken early. Files
are left where they are; a file already imported (same path, size and time, or the same
content for the same accession) is not imported again. A file that cannot be imported (not a
JPEG/PNG/PDF/MP4, damaged, no accession, unknown order) moves to ``error/`` beside it with
``<name>.reason.txt``; a store the archive could not take (disk full) is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.events import FileClosedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from mekong.edge.imports.convert import NotConvertible
from mekong.edge.imports.service import Actor, Importer, StoreRefused
from mekong.edge.orders import UnknownOrder
from mekong.shared.config import WatchFolderConfig

log = logging.getLogger(__name__)
SCAN_SECONDS = 1.0
AFTER_CLOSE_SECONDS = 1.0
RETRY_SECONDS = 30.0
_SKIPPED = re.compile(r"^\.|\.(tmp|part|partial|crdownload|swp)$|~$", re.IGNORECASE)


@dataclass
class _Seen:
    size: int
    mtime: float
    since: float  # unchanged since
    closed_at: float = 0.0
    retry_at: float = 0.0


@dataclass
class Folder:
    config: WatchFolderConfig
    seen: dict[Path, _Seen] = field(default_factory=dict)
    done: dict[Path, tuple[int, float]] = field(default_factory=dict)
    imported: int = 0
    failed: int = 0
    last_error: str = ""

    @property
    def root(self) -> Path:
        return Path(self.config.path)

    def accession_for(self, name: str) -> str:
        pattern = self.config.accession_pattern
        match = re.search(pattern, name) if pattern else None
        if match:
            groups = match.groupdict()
            return (groups.get("accession") or (match.group(1) if match.groups() else "")
                    or match.group(0))  # fmt: skip
        return self.config.accession


class _Wake(FileSystemEventHandler):
    def __init__(self, watcher: WatchFolders) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileClosedEvent):
            self.watcher.closed(Path(str(event.src_path)))
        self.watcher.poke()


class WatchFolders:
    """The component: one watchdog observer for every folder, one scanning task."""

    name = "imports"

    def __init__(self, folders: tuple[WatchFolderConfig, ...], importer: Importer) -> None:
        self.folders = [Folder(config) for config in folders]
        self.importer = importer
        self.state = "stopped"
        self._observer: Any = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._closed: dict[Path, float] = {}

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.folders:
            self._observer = Observer()
            for folder in self.folders:
                folder.root.mkdir(parents=True, exist_ok=True)
                self._observer.schedule(_Wake(self), str(folder.root), recursive=True)
            self._observer.start()
        self._task = asyncio.create_task(self._run())
        self.state = "running"

    async def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            await asyncio.to_thread(self._observer.join, 10)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.importer.close()
        self.state = "stopped"

    def poke(self) -> None:
        """From watchdog's thread: something changed, scan now."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def closed(self, path: Path) -> None:
        self._closed[path] = time.monotonic()

    async def _run(self) -> None:
        while True:
            for folder in self.folders:
                try:
                    await self._scan(folder)
                except Exception:  # one bad folder (unmounted share) must not stop the rest
                    log.exception("watch folder %s: scan failed", folder.root)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SCAN_SECONDS)
            self._wake.clear()

    async def _scan(self, folder: Folder) -> None:
        files = await asyncio.to_thread(_listing, folder.root)
        now = time.monotonic()
        for path in list(folder.seen):
            if path not in files:
                del folder.seen[path]
        for path, (size, mtime) in files.items():
            if folder.done.get(path) == (size, mtime):
                continue
            seen = folder.seen.get(path)
            if seen is None or (seen.size, seen.mtime) != (size, mtime):
                folder.seen[path] = _Seen(size, mtime, now)
                continue
            if self._ready(folder, path, seen, now):
                await self._take(folder, path, seen)

    def _ready(self, folder: Folder, path: Path, seen: _Seen, now: float) -> bool:
        """Unchanged for ``stable_seconds``, or for a second after the writer closed it."""
        if now < seen.retry_at:
            return False
        quiet = now - seen.since
        closed = self._closed.get(path, 0.0)
        after_close = closed >= seen.since - SCAN_SECONDS and quiet >= min(
            AFTER_CLOSE_SECONDS, folder.config.stable_seconds
        )
        return quiet >= folder.config.stable_seconds or after_close

    async def _take(self, folder: Folder, path: Path, seen: _Seen) -> None:
        name = path.relative_to(folder.root).as_posix()
        accession = folder.accession_for(path.name)
        actor = Actor(f"folder:{folder.config.device or folder.root.name}"[:128], "system")
        try:
            if not accession:
                raise NotConvertible("no accession: the file name does not match "
                                     "accession_pattern and the folder has no default")  # fmt: skip
            data = await asyncio.to_thread(path.read_bytes)
            if (len(data), seen.mtime) != (seen.size, path.stat().st_mtime):
                return  # changed while read: wait for it to settle again
            result = await self.importer.import_bytes(
                data,
                path.name,
                accession,
                folder.config.device,
                "folder",
                actor,
                folder.config.kind,
            )
            folder.imported += 0 if result.duplicate else 1
            log.info("watch folder %s: %s → %s%s", folder.root, name, result.sop_uids,
                     " (already imported)" if result.duplicate else "")  # fmt: skip
        except (NotConvertible, UnknownOrder) as exc:
            await asyncio.to_thread(_to_error_folder, folder.root, path, str(exc))
            folder.failed += 1
            folder.last_error = f"{name}: {exc}"
            self.importer.refused(actor, name, str(exc))
            log.warning("watch folder %s: %s moved to error/: %s", folder.root, name, exc)
            return
        except (StoreRefused, OSError) as exc:
            seen.retry_at = time.monotonic() + RETRY_SECONDS
            folder.last_error = f"{name}: {exc} (retried in {RETRY_SECONDS:.0f} s)"
            log.error("watch folder %s: %s not stored: %s", folder.root, name, exc)
            return
        folder.done[path] = (seen.size, seen.mtime)
        folder.seen.pop(path, None)

    async def health(self) -> dict[str, Any]:
        """The imports section of /api/health: per folder, what waits and what failed."""
        return {folder.config.path: {"imported": folder.imported, "failed": folder.failed,
                                     "waiting": len(folder.seen), "last_error": folder.last_error}
                for folder in self.folders}  # fmt: skip

    def status(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [{
            "path": str(folder.root), "device": folder.config.device,
            "imported": folder.imported, "failed": folder.failed,
            "last_error": folder.last_error,
            "waiting": [{"file": p.relative_to(folder.root).as_posix(), "size": s.size,
                         "unchanged_seconds": round(now - s.since, 1)}
                        for p, s in folder.seen.items()],
            "errors": sorted(p.name for p in (folder.root / "error").glob("*")
                             if not p.name.endswith(".reason.txt")),
        } for folder in self.folders]  # fmt: skip


def _listing(root: Path) -> dict[Path, tuple[int, float]]:
    """Every candidate file below ``root`` (not error/, not hidden or temporary names)."""
    found: dict[Path, tuple[int, float]] = {}
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [d for d in subfolders if d != "error" and not d.startswith(".")]
        for name in names:
            if _SKIPPED.search(name):
                continue
            path = Path(folder) / name
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                found[path] = (stat.st_size, stat.st_mtime)
    return found


def _to_error_folder(root: Path, path: Path, reason: str) -> None:
    errors = root / "error"
    errors.mkdir(exist_ok=True)
    target = errors / path.name
    number = 1
    while target.exists():
        number += 1
        target = errors / f"{path.stem}.{number}{path.suffix}"
    path.rename(target)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    target.with_name(target.name + ".reason.txt").write_text(
        f"{stamp} {path.name}\n{reason}\n", encoding="utf-8"
    )
