"""``mekong restore``: bring a node back from a backup snapshot into an empty data directory
(QOS-5).

Every file is checked against the digest the snapshot recorded as it is copied, so a damaged
backup fails loudly instead of restoring quietly wrong data. Until the last file is in place a
``restore-incomplete`` marker sits in the data directory and the node refuses to start on it:
a node started on half a restore would take the blobs not yet indexed for crash leftovers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mekong.shared.appliance.backup import read_blob_list, snapshots
from mekong.shared.storage.blobs import blob_path
from mekong.shared.storage.files import DigestMismatch, copy_checked, fsync_dir

MARKER = "restore-incomplete"
_IGNORED = {"lost+found"}  # a fresh ext4 data partition has it


class RestoreError(RuntimeError):
    """The restore cannot start or a file of the snapshot is damaged or missing."""


@dataclass(frozen=True)
class RestoreResult:
    snapshot: Path
    blobs: int
    files: int
    config: Path | None


def restore(
    backup: Path, data_dir: Path, name: str = "", config_out: Path | None = None
) -> RestoreResult:
    """Restore snapshot ``name`` (default: the newest) of ``backup`` into ``data_dir``."""
    snapshot = _chosen(backup, name)
    manifest = json.loads((snapshot / "manifest.json").read_text())
    _check_empty(data_dir)
    marker = data_dir / MARKER
    marker.touch()
    files = manifest["files"]
    for relative, digest in files.items():
        if relative.startswith("files/"):
            _copy(snapshot / relative, data_dir / relative.removeprefix("files/"), digest)
    needed = read_blob_list(snapshot)
    for digest in needed:
        _copy(blob_path(backup / "blobs", digest), blob_path(data_dir / "blobs", digest), digest)
    config = None
    if config_out is not None and "config.toml" in files:
        _copy(snapshot / "config.toml", config_out, files["config.toml"])
        config = config_out
    _copy(snapshot / "index.db", data_dir / "index.db", files["index.db"])
    for folder in {p.parent for p in data_dir.rglob("*") if p.is_file()}:
        fsync_dir(folder)
    marker.unlink()
    fsync_dir(data_dir)
    return RestoreResult(snapshot, len(needed), len(files), config)


def _chosen(backup: Path, name: str) -> Path:
    complete = snapshots(backup)
    if not complete:
        raise RestoreError(f"no complete backup snapshot in {backup}/snapshots")
    if not name:
        return complete[-1]
    for snapshot in complete:
        if snapshot.name == name:
            return snapshot
    names = ", ".join(s.name for s in complete[-5:])
    raise RestoreError(f"no snapshot {name!r} in {backup}; the newest are: {names}")


def _check_empty(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    if (data_dir / MARKER).exists():
        raise RestoreError(
            f"{data_dir} holds an unfinished restore: empty it (it has no data of its own yet) "
            "and restore again"
        )
    present = [p.name for p in data_dir.iterdir() if p.name not in _IGNORED]
    if present:
        raise RestoreError(
            f"{data_dir} is not empty ({', '.join(sorted(present)[:5])}): restore into an "
            "empty data directory, never over a node's data"
        )


def _copy(source: Path, target: Path, digest: str) -> None:
    try:
        copy_checked(source, target, expected=digest)
    except FileNotFoundError:
        raise RestoreError(f"the backup lacks {source}: it is damaged") from None
    except DigestMismatch as exc:
        raise RestoreError(f"the backup is damaged: {exc}") from None
