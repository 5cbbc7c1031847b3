"""Small files written durably: the content is fsync'd before it gets its name, and the folder
after, so a crash leaves either the old file or the whole new one."""

from __future__ import annotations

import os
from pathlib import Path


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``path`` (replacing it if it exists)."""
    tmp = _written(path, data, mode)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def create_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``path``; FileExistsError (and nothing changed) if it already exists."""
    tmp = _written(path, data, mode)
    try:
        os.link(tmp, path)  # atomic, and refuses an existing name
    finally:
        tmp.unlink()
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _written(path: Path, data: bytes, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp
