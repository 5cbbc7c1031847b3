"""Which blobs an index needs on disk, read from an index file (the live one or a backup copy).

Instances and imported originals point to blobs by SHA-256; blobs an edge reclaimed after its hub
confirmed them (``reclaimed_blob``) are expected to be absent, their bytes come back on demand.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

_NEEDED = """
    SELECT digest, size FROM instance
    UNION SELECT digest, size FROM import_original
"""


def open_read_only(index: Path) -> sqlite3.Connection:
    """A read-only connection that still sees the WAL of a running node."""
    connection = sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=30)
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


def needed_blobs(index: Path) -> dict[str, int]:
    """``digest → size`` of every blob the index at ``index`` expects in ``blobs/``."""
    with closing(open_read_only(index)) as connection:
        return needed_blobs_of(connection)


def needed_blobs_of(connection: sqlite3.Connection) -> dict[str, int]:
    needed = {digest: size for digest, size in connection.execute(_NEEDED)}
    for (digest,) in connection.execute("SELECT digest FROM reclaimed_blob"):
        needed.pop(digest, None)
    return needed


def index_counts(connection: sqlite3.Connection) -> dict[str, int]:
    return {
        table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
        for table in ("patient", "study", "series", "instance")
    }


def schema_revision(connection: sqlite3.Connection) -> str:
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else ""
