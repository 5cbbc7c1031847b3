"""The index facade: the only way into the database for the rest of the node.

Components get one :class:`Index`; it owns the engine, the group-commit writer and every query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from mekong.shared.db import schema as t
from mekong.shared.db.attributes import Level
from mekong.shared.db.engine import (
    open_engine,
    open_serial_engine,
    open_sync_engine,
    sqlite_url,
    sync_url,
)
from mekong.shared.db.grouped import GroupCommitter
from mekong.shared.db.originals import import_original
from mekong.shared.db.query import Query, build_select
from mekong.shared.db.upsert import upsert_statement
from mekong.shared.db.writer import IndexWriter

T = TypeVar("T")


@dataclass(frozen=True)
class RemoteAE:
    title: str
    host: str
    port: int
    allow: frozenset[str]
    fuzzy_find: bool = False
    description: str = ""
    ascii_worklist: bool = False  # MWL names folded to ASCII, default character set


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
        self._serial: Engine | None = None
        self._ris_executor: ThreadPoolExecutor | None = None
        self._grouped = GroupCommitter(self._ris_engine, self._ris_thread)

    @classmethod
    async def open(cls, db_path: Path) -> Index:
        return cls(await open_engine(sqlite_url(db_path)))

    def start_writer(
        self,
        sync_dirs: Callable[[set[Path]], None],
        duplicate_policy: str,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        """Start the group-commit writer; ``on_commit`` runs after each commit that stored
        an instance (the reconciler's wake-up)."""
        url = self.engine.url.render_as_string(hide_password=False)
        writer_engine = open_sync_engine(sync_url(url))
        self.writer = IndexWriter(writer_engine, sync_dirs, duplicate_policy, on_commit=on_commit)
        self.writer.start()

    async def close(self) -> None:
        if self.writer:
            await asyncio.to_thread(self.writer.stop)
        if self._ris_executor:
            await asyncio.to_thread(self._ris_executor.shutdown)
        if self._serial:
            self._serial.dispose()
        await self.engine.dispose()

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(connection)`` in one durable read-write transaction (RIS, HL7).

        Runs on the node's single RIS thread with a synchronous connection: a statement costs
        a function call, not a thread round trip as through aiosqlite, and the same domain
        functions serve pynetdicom's threads (MWL, MPPS) directly via :meth:`transaction_blocking`.
        Commits when ``work`` returns (WAL fsync'd: synchronous=FULL), rolls back if it
        raises; units run one at a time in arrival order, and those waiting together share one
        commit (:mod:`mekong.shared.db.grouped`), each in its own savepoint.
        """
        return await self._grouped.run(work)

    async def reading(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(connection)`` on a read-only snapshot (same thread as the writes)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._ris_thread(), self.reading_blocking, work)

    def transaction_blocking(self, work: Callable[[Connection], T]) -> T:
        with self._ris_engine().begin() as conn:
            return work(conn)

    def reading_blocking(self, work: Callable[[Connection], T]) -> T:
        with self._ris_engine().connect() as conn:
            conn.execution_options(mekong_read_only=True)
            try:
                return work(conn)
            finally:
                conn.rollback()

    def _ris_engine(self) -> Engine:
        if self._serial is None:
            self._serial = open_serial_engine(
                sync_url(self.engine.url.render_as_string(hide_password=False))
            )
        return self._serial

    def _ris_thread(self) -> ThreadPoolExecutor:
        if self._ris_executor is None:
            self._ris_executor = ThreadPoolExecutor(1, thread_name_prefix="ris")
        return self._ris_executor

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

    async def schema_revision(self) -> str:
        """The Alembic revision the index is at (after a rolled-back upgrade: a newer one)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
        return row[0] if row else ""

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

    async def instance_with_digest(self, digest: str) -> str | None:
        """The SOP Instance UID of an instance stored with exactly these bytes, if any (the
        hub's resumable upload skips an object it already holds)."""
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(t.instance.c.sop_uid).where(t.instance.c.digest == digest).limit(1)
            )
            return found.scalar()

    async def known_digests(self, digests: list[str]) -> set[str]:
        """Which of ``digests`` some instance row or imported original points to."""
        known: set[str] = set()
        async with self.engine.connect() as conn:
            for start in range(0, len(digests), 500):
                chunk = digests[start : start + 500]
                for column in (t.instance.c.digest, import_original.c.digest):
                    rows = await conn.execute(select(column).where(column.in_(chunk)))
                    known.update(row[0] for row in rows)
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
                bool(row.ascii_worklist),
            )
            for row in rows
        ]

    async def save_remote_ae(self, ae: RemoteAE) -> None:
        values = _ae_row(ae)
        statement = upsert_statement(self.dialect, t.remote_ae, tuple(values), ("title",))
        async with self.engine.begin() as conn:
            await conn.execute(statement, values)

    async def replace_remote_aes(self, aes: list[RemoteAE]) -> None:
        """The whole AE table replaced in one transaction (a configuration bundle)."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(t.remote_ae))
            if aes:
                await conn.execute(t.remote_ae.insert(), [_ae_row(ae) for ae in aes])

    async def remove_remote_ae(self, title: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(t.remote_ae).where(t.remote_ae.c.title == title))
        return bool(result.rowcount)


def _ae_row(ae: RemoteAE) -> dict[str, Any]:
    return {"title": ae.title, "host": ae.host, "port": ae.port,
            "allow": ",".join(sorted(ae.allow)), "fuzzy_find": ae.fuzzy_find,
            "description": ae.description, "ascii_worklist": ae.ascii_worklist}  # fmt: skip
