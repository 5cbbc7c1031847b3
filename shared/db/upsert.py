"""Dialect-aware INSERT … ON CONFLICT DO UPDATE (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert_statement(
    dialect_name: str,
    table: Table,
    values: dict[str, Any],
    key: list[str],
    keep: list[str] | None = None,
):  # type: ignore[no-untyped-def]
    """Insert ``values`` or update the row with the same ``key`` columns.

    Columns in ``keep`` are written on insert but never changed on update.
    """
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    changed = {k: statement.excluded[k] for k in values if k not in key and k not in (keep or [])}
    return statement.on_conflict_do_update(index_elements=key, set_=changed)


def upsert_returning_id(
    conn: Connection,
    table: Table,
    values: dict[str, Any],
    key: list[str],
    keep: list[str] | None = None,
) -> int:
    statement = upsert_statement(conn.dialect.name, table, values, key, keep)
    return int(conn.execute(statement.returning(table.c.id)).scalar_one())
