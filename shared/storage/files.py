"""Small files written durably: the content is fsync'd before it gets its name, and the folder
after, so a crash leaves either the old file or the whole new one."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 16 * 1024 * 1024


class DigestMismatch(ValueError):
    """A file's bytes do not hash to the SHA-256 it is named or recorded by."""


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


def fsync_path(path: Path) -> None:
    """fsync a file (its bytes) or a folder (the names in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


fsync_dir = fsync_path


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


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_checked(source: Path, target: Path, expected: str | None = None) -> str:
    """Copy ``source`` durably to ``target`` (replacing it) and return the SHA-256 of the bytes
    copied. With ``expected``, a different digest raises :class:`DigestMismatch` and leaves
    ``target`` untouched, so a damaged file is never copied as if it were good."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as reader, open(tmp, "wb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        if expected is not None and digest.hexdigest() != expected:
            raise DigestMismatch(f"{source}: SHA-256 is {digest.hexdigest()}, expected {expected}")
        os.chmod(tmp, source.stat().st_mode & 0o777)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return digest.hexdigest()
