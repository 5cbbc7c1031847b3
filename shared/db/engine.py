"""Open the index database: async engine, SQLite pragmas for durability, Alembic migrations."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError as AlembicError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)
_MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def sync_url(async_url: str) -> str:
    """The same database through the synchronous driver (used by the index writer thread)."""
    return async_url.replace("+aiosqlite", "")


def open_sync_engine(url: str) -> Engine:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


async def open_engine(url: str) -> AsyncEngine:
    """Create the engine and bring the schema to the newest migration."""
    engine = create_async_engine(url, pool_size=4, max_overflow=4)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
    return engine


def open_serial_engine(url: str) -> Engine:
    """A synchronous engine for short read-then-write transactions (RIS, HL7): one connection,
    and on SQLite every write transaction starts with ``BEGIN IMMEDIATE``.

    A deferred transaction that reads, then writes, fails at once with "database is locked"
    when another connection (the index writer, a DICOM worker process) committed in between;
    taking the write lock up front makes it wait (busy_timeout) instead. A connection with the
    execution option ``mekong_read_only`` begins a plain (deferred) transaction: a consistent
    snapshot that never waits for writers.
    """
    engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "connect", _manual_transactions)
        event.listen(engine, "begin", _begin)
    return engine


def _manual_transactions(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.isolation_level = None  # the driver no longer issues BEGIN itself


def _begin(conn: Connection) -> None:
    read_only = conn.get_execution_options().get("mekong_read_only", False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_conn.cursor()
    # WAL lets queries run beside the single writer; synchronous=FULL fsyncs the WAL at every
    # commit, which is what makes a committed index row (and so a DICOM success) durable.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _upgrade(connection: Connection) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and not _known(ScriptDirectory.from_config(config), current):
        # A newer binary migrated this index and was rolled back (mekong upgrade). Migrations
        # only ever add tables, columns with defaults and indexes (tests/test_migrations.py),
        # so this older code runs correctly on the newer schema.
        log.warning("index schema %s is newer than this version knows; running on it", current)
        return
    command.upgrade(config, "head")


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except AlembicError:
        return False
