"""The index facade: the only way into the database for the rest of the node.

Components get one :class:`Index`; it owns the engine, the group-commit writer and every query.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mekong.shared.db import schema as t
from mekong.shared.db.attributes import Level
from mekong.shared.db.engine import (
    open_engine,
    open_serial_engine,
    open_sync_engine,
    sqlite_url,
    sync_url,
)
from mekong.shared.db.query import Query, build_select
from mekong.shared.db.upsert import upsert_statement
from mekong.shared.db.writer import IndexWriter


@dataclass(frozen=True)
class RemoteAE:
    title: str
    host: str
    port: int
    allow: frozenset[str]
    fuzzy_find: bool = False
    description: str = ""


@dataclass(frozen=True)
class StoredInstanceRef:
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    digest: str


class Index:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.writer: IndexWriter | None = None
        self._serial: AsyncEngine | None = None

    @classmethod
    async def open(cls, db_path: Path) -> Index:
        return cls(await open_engine(sqlite_url(db_path)))

    def start_writer(self, sync_dirs: Callable[[set[Path]], None], duplicate_policy: str) -> None:
        url = self.engine.url.render_as_string(hide_password=False)
        writer_engine = open_sync_engine(sync_url(url))
        self.writer = IndexWriter(writer_engine, sync_dirs, duplicate_policy)
        self.writer.start()

    async def close(self) -> None:
        if self.writer:
            await asyncio.to_thread(self.writer.stop)
        if self._serial:
            await self._serial.dispose()
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One durable read-write transaction for RIS and HL7 work (not DICOM instances).

        Commits when the block ends (WAL fsync'd: synchronous=FULL), rolls back on an
        exception. The node's transactions run one at a time, in arrival order.
        """
        if self._serial is None:
            self._serial = open_serial_engine(self.engine.url.render_as_string(hide_password=False))
        async with self._serial.begin() as conn:
            yield conn

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A read-only connection (WAL: it never waits for writers)."""
        async with self.engine.connect() as conn:
            yield conn

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # --- queries -------------------------------------------------------------------------

    async def find(self, query: Query, returned: list[str]) -> list[dict[str, Any]]:
        statement = build_select(query, returned, self.dialect)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [dict(row) for row in rows]

    async def instances(self, query: Query) -> list[StoredInstanceRef]:
        """Instances matching a retrieve identifier at any level (C-GET / C-MOVE / WADO)."""
        image_query = Query(Level.IMAGE, query.filters, fuzzy=False)
        statement = build_select(image_query, ["SOPInstanceUID"], self.dialect).with_only_columns(
            t.instance.c.sop_uid,
            t.instance.c.sop_class_uid,
            t.instance.c.transfer_syntax,
            t.instance.c.digest,
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [StoredInstanceRef(*row) for row in rows]

    async def counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            result = {}
            for name, table in (
                ("patients", t.patient),
                ("studies", t.study),
                ("series", t.series),
                ("instances", t.instance),
            ):
                result[name] = int(
                    (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                )
        return result

    async def known_digests(self, digests: list[str]) -> set[str]:
        """Which of ``digests`` some instance row points to."""
        known: set[str] = set()
        async with self.engine.connect() as conn:
            for start in range(0, len(digests), 500):
                chunk = digests[start : start + 500]
                rows = await conn.execute(
                    select(t.instance.c.digest).where(t.instance.c.digest.in_(chunk))
                )
                known.update(row.digest for row in rows)
        return known

    # --- remote AE table -----------------------------------------------------------------

    async def remote_aes(self) -> list[RemoteAE]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(t.remote_ae).order_by(t.remote_ae.c.title))).all()
        return [
            RemoteAE(
                row.title,
                row.host,
                row.port,
                frozenset(filter(None, row.allow.split(","))),
                bool(row.fuzzy_find),
                row.description,
            )
            for row in rows
        ]

    async def save_remote_ae(self, ae: RemoteAE) -> None:
        values = {
            "title": ae.title,
            "host": ae.host,
            "port": ae.port,
            "allow": ",".join(sorted(ae.allow)),
            "fuzzy_find": ae.fuzzy_find,
            "description": ae.description,
        }
        statement = upsert_statement(self.dialect, t.remote_ae, tuple(values), ("title",))
        async with self.engine.begin() as conn:
            await conn.execute(statement, values)

    async def remove_remote_ae(self, title: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(t.remote_ae).where(t.remote_ae.c.title == title))
        return bool(result.rowcount)
