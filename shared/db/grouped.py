"""Group commit for the RIS thread's read-write transactions (HL7, REST orders, console).

Every transaction waiting when the RIS thread becomes free runs in ONE database transaction,
each inside its own SAVEPOINT, and one commit (one WAL fsync) makes them all durable. A unit
of work that raises is rolled back to its savepoint alone — its neighbours still commit —
and its caller gets the exception; every caller learns its result only after the commit, so
an ACK or a 201 still promises durability. With one caller at a time this is exactly one
transaction per call, as before; with several (HL7 connections, REST clients, the console)
the fsync is shared, which is what the index writer does for C-STORE.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

T = TypeVar("T")
MAX_GROUP = 64  # units per commit: bounds how long one group holds the write lock


@dataclass
class _Unit:
    work: Callable[[Connection], Any]
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None


class GroupCommitter:
    """Runs units of work on ``executor`` (one thread) against ``engine()``, grouped."""

    def __init__(self, engine: Callable[[], Engine], executor: Callable[[], ThreadPoolExecutor]):
        self._engine = engine
        self._executor = executor
        self._waiting: deque[_Unit] = deque()
        self._lock = threading.Lock()

    async def run(self, work: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        unit = _Unit(work, loop.create_future())
        with self._lock:
            self._waiting.append(unit)
        # One drain job per unit; a job that finds its unit already taken by an earlier
        # group returns at once.
        self._executor().submit(self._drain)
        return await unit.future

    def _drain(self) -> None:
        group = self._take()
        if not group:
            return
        try:
            with self._engine().begin() as conn:
                for unit in group:
                    _run_in_savepoint(conn, unit)
        except BaseException as error:  # the commit itself failed: nothing is durable
            for unit in group:
                unit.error = unit.error or error
        for unit in group:
            _settle(unit)

    def _take(self) -> list[_Unit]:
        with self._lock:
            count = min(len(self._waiting), MAX_GROUP)
            return [self._waiting.popleft() for _ in range(count)]


def _run_in_savepoint(conn: Connection, unit: _Unit) -> None:
    savepoint = conn.begin_nested()
    try:
        unit.result = unit.work(conn)
    except Exception as error:
        savepoint.rollback()
        unit.error = error
    else:
        savepoint.commit()


def _settle(unit: _Unit) -> None:
    loop = unit.future.get_loop()
    if loop.is_closed():
        return
    if unit.error is not None:
        loop.call_soon_threadsafe(_set_exception, unit.future, unit.error)
    else:
        loop.call_soon_threadsafe(_set_result, unit.future, unit.result)


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
