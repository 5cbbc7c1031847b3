"""``mekong backup``: a consistent online backup of a node's data directory (QOS-5).

Layout of a backup folder (a local disk or a NAS mount)::

    DEST/blobs/ab/cd/<sha256>          one pool for every snapshot: a blob is copied once
    DEST/snapshots/<UTC time>/         one complete backup, named when it is whole
        index.db                       SQLite online-backup copy of the index
        blobs.tsv                      every blob that copy needs: digest, size (the manifest)
        files/                         keys, certificates, cursors, bundles of the data dir
        config.toml                    the node's configuration file, when it has one
        manifest.json                  version, schema revision, counts, digests of the above

Why it is consistent while the node stores: the index is copied in one step of SQLite's backup
API, a snapshot of one committed state; blobs are immutable and named by content, so copying the
ones that snapshot needs gives exactly that state. A blob deleted after the snapshot (a replaced
duplicate, a reclaimed study) makes the backup take a fresh snapshot and try again. The small
state files are copied *before* the index, so a cursor in them is never ahead of the index it
is restored with (something is sent twice after a restore, never skipped).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mekong.shared import __version__
from mekong.shared.appliance.references import (
    index_counts,
    needed_blobs_of,
    open_read_only,
    schema_revision,
)
from mekong.shared.storage.blobs import blob_path
from mekong.shared.storage.files import copy_checked, file_digest, fsync_dir, fsync_path

# Data-directory entries that are not state: the blob store (copied by digest), the live index
# (copied through the backup API), work areas a restart rebuilds or discards, and ``.cache``
# (the service user's home is the data directory: the onefile binary unpacks itself there).
NOT_STATE = {
    "blobs", "tmp", "holds", "index.db", "index.db-wal", "index.db-shm", "blobs.lock",
    "last-start", "capture", "uploads", "restore-incomplete", ".cache",
}  # fmt: skip
ATTEMPTS = 5


class BackupError(RuntimeError):
    """The backup could not be completed; the message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    snapshot: Path
    blobs: int
    blobs_copied: int
    bytes_copied: int
    counts: dict[str, int]
    seconds: float


def take_backup(
    data_dir: Path, dest: Path, config_file: Path | None = None, keep: int = 0
) -> BackupResult:
    """Back up ``data_dir`` into ``dest``; keep the newest ``keep`` snapshots (0: all)."""
    index = data_dir / "index.db"
    if not index.is_file():
        raise BackupError(f"no index at {index}: is {data_dir} a Mekong data directory?")
    dest.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest):
        _remove_partials(dest)
        result = _snapshot(data_dir, dest, config_file)
        if keep:
            prune(dest, keep)
    return result


def _snapshot(data_dir: Path, dest: Path, config_file: Path | None) -> BackupResult:
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")  # sorts by time
    partial = dest / "snapshots" / f".partial-{stamp}"
    partial.mkdir(parents=True)
    files = _copy_state_files(data_dir, partial / "files")
    if config_file is not None:
        files["config.toml"] = copy_checked(config_file, partial / "config.toml")
    needed, copied, size = _index_and_blobs(data_dir / "index.db", partial / "index.db", dest)
    files["index.db"] = file_digest(partial / "index.db")
    _write_blob_list(partial / "blobs.tsv", needed)
    with closing(sqlite3.connect(partial / "index.db")) as connection:
        counts, revision = index_counts(connection), schema_revision(connection)
    manifest = {
        "format": 1, "mekong_version": __version__, "created_at": stamp, "source": str(data_dir),
        "schema_revision": revision, "counts": counts, "blobs": len(needed),
        "blob_bytes": sum(needed.values()), "files": files,
    }  # fmt: skip
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    final = _publish(partial, stamp)
    return BackupResult(final, len(needed), copied, size, counts, time.monotonic() - started)


def _index_and_blobs(index: Path, target: Path, dest: Path) -> tuple[dict[str, int], int, int]:
    """Snapshot the index and copy the blobs it needs; again with a fresh snapshot when some
    were deleted in between (their rows are gone from the live index by then)."""
    copied = size = 0
    for _attempt in range(ATTEMPTS):
        needed = _copy_index(index, target)
        new, new_bytes, vanished = _copy_blobs(index.parent / "blobs", dest / "blobs", needed)
        copied, size = copied + new, size + new_bytes
        if not vanished:
            return needed, copied, size
        still_needed = set(vanished) & set(_live_needs(index))
        if still_needed:
            raise BackupError(
                f"{len(still_needed)} blobs the live index needs are missing from the data "
                f"directory (e.g. {sorted(still_needed)[0]}): run 'mekong verify'"
            )
    raise BackupError(f"blobs kept being deleted during {ATTEMPTS} snapshots; try again later")


def _copy_index(index: Path, target: Path) -> dict[str, int]:
    target.unlink(missing_ok=True)
    with closing(open_read_only(index)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)  # one step: a single read transaction, one committed state
        copy.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        needed = needed_blobs_of(copy)
    fsync_path(target)
    return needed


def _live_needs(index: Path) -> dict[str, int]:
    with closing(open_read_only(index)) as connection:
        return needed_blobs_of(connection)


def _copy_blobs(source: Path, pool: Path, needed: dict[str, int]) -> tuple[int, int, list[str]]:
    """Copy the blobs the pool lacks, each checked against its name; returns how many were
    copied, their bytes, and the digests that were no longer in the data directory."""
    copied = size = 0
    vanished: list[str] = []
    shards: set[Path] = set()
    for digest, length in needed.items():
        target = blob_path(pool, digest)
        if target.is_file() and target.stat().st_size == length:
            continue
        try:
            copy_checked(blob_path(source, digest), target, expected=digest)
        except FileNotFoundError:
            vanished.append(digest)
            continue
        copied, size = copied + 1, size + length
        shards.add(target.parent)
    for shard in shards | {shard.parent for shard in shards}:
        fsync_dir(shard)
    return copied, size, vanished


def _copy_state_files(data_dir: Path, target: Path) -> dict[str, str]:
    digests: dict[str, str] = {}
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if relative.parts[0] in NOT_STATE or not path.is_file() or path.is_symlink():
            continue
        digests[f"files/{relative.as_posix()}"] = copy_checked(path, target / relative)
    return digests


def _write_blob_list(path: Path, needed: dict[str, int]) -> None:
    lines = "".join(f"{digest}\t{size}\n" for digest, size in sorted(needed.items()))
    path.write_text(lines)


def read_blob_list(snapshot: Path) -> dict[str, int]:
    needed = {}
    for line in (snapshot / "blobs.tsv").read_text().splitlines():
        digest, size = line.split("\t")
        needed[digest] = int(size)
    return needed


def _publish(partial: Path, stamp: str) -> Path:
    """Make every file of the snapshot durable, then give it its final name in one rename."""
    for path in partial.rglob("*"):
        if path.is_file():
            fsync_path(path)
    for folder in [partial, *(p for p in partial.rglob("*") if p.is_dir())]:
        fsync_dir(folder)
    final = partial.with_name(stamp)
    if final.exists():
        raise BackupError(f"{final} already exists")
    os.rename(partial, final)
    fsync_dir(final.parent)
    return final


def snapshots(dest: Path) -> list[Path]:
    """Complete snapshots, oldest first."""
    folder = dest / "snapshots"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def prune(dest: Path, keep: int) -> tuple[int, int]:
    """Delete all but the newest ``keep`` snapshots, then the pool blobs none of the rest
    needs; returns (snapshots removed, blobs removed)."""
    old = snapshots(dest)[:-keep] if keep else []
    for snapshot in old:
        shutil.rmtree(snapshot)
    wanted: set[str] = set()
    for snapshot in snapshots(dest):
        wanted.update(read_blob_list(snapshot))
    removed = 0
    for path in (dest / "blobs").glob("*/*/*"):
        if path.name not in wanted:
            path.unlink()
            removed += 1
    return len(old), removed


def _remove_partials(dest: Path) -> None:
    """Snapshots a crashed or killed backup left unnamed are incomplete: never restorable."""
    for partial in (dest / "snapshots").glob(".partial-*"):
        shutil.rmtree(partial, ignore_errors=True)


@contextlib.contextmanager
def _exclusive(dest: Path) -> Iterator[None]:
    """One backup at a time per destination (a scheduled one and a manual one may meet)."""
    with open(dest / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"another backup into {dest} is running") from None
        yield
