"""Non-DICOM originals kept byte for byte beside the DICOM made from them (PACS-5.2–5.4).

An imported JPEG, PNG, PDF or MP4 is a blob like any instance (content-addressed, same
store); ``import_original`` links its digest to the SOP Instance UID it became, with the file
name and media type it arrived with. The same content imported again for the same accession
is found here and not imported twice. Migration ``import1`` creates the table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Float, Index, Integer, String, Table, Text, select

from mekong.shared.db.schema import metadata

import_original = Table(
    "import_original",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sop_uid", String(64), nullable=False),
    Column("digest", String(64), nullable=False),  # SHA-256 of the original = its blob name
    Column("size", Integer, nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("filename", Text, nullable=False, server_default=""),
    Column("accession", String(16), nullable=False, server_default=""),
    Column("device", String(64), nullable=False, server_default=""),
    Column("source", String(16), nullable=False, server_default=""),  # upload | folder
    Column("imported_at", Float, nullable=False),
)
Index("ix_import_original_sop", import_original.c.sop_uid)
Index("ix_import_original_digest", import_original.c.digest, import_original.c.accession)


@dataclass(frozen=True)
class Original:
    sop_uid: str
    digest: str
    size: int
    media_type: str
    filename: str
    accession: str
    device: str


def link(conn: Connection, original: Original, source: str) -> None:
    conn.execute(import_original.insert().values(
        sop_uid=original.sop_uid, digest=original.digest, size=original.size,
        media_type=original.media_type, filename=original.filename,
        accession=original.accession, device=original.device, source=source,
        imported_at=time.time(),
    ))  # fmt: skip


def by_sop_uid(conn: Connection, sop_uid: str) -> Original | None:
    row = conn.execute(select(import_original).where(import_original.c.sop_uid == sop_uid)).first()
    return _original(row) if row else None


def already_imported(conn: Connection, digest: str, accession: str) -> list[str]:
    """SOP Instance UIDs made from this content for this accession (empty: never imported)."""
    rows = conn.execute(
        select(import_original.c.sop_uid).where(
            import_original.c.digest == digest, import_original.c.accession == accession
        )
    )
    return [row.sop_uid for row in rows]


def _original(row) -> Original:  # type: ignore[no-untyped-def]
    return Original(row.sop_uid, row.digest, row.size, row.media_type, row.filename,
                    row.accession, row.device)  # fmt: skip
