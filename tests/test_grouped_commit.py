"""Group commit on the RIS thread: units waiting together share one commit, each in its own
savepoint; a failing unit is rolled back alone and its caller gets the error."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, event, text

from mekong.shared.db.engine import open_serial_engine
from mekong.shared.db.grouped import GroupCommitter


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = open_serial_engine(f"sqlite:///{tmp_path / 'g.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE item (name TEXT PRIMARY KEY)")
    yield engine
    engine.dispose()


def _committer(engine: Engine, commits: list[int]) -> GroupCommitter:
    executor = ThreadPoolExecutor(1)
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    return GroupCommitter(lambda: engine, lambda: executor)


def _insert(name: str, gate: threading.Event | None = None):
    def work(conn: Connection) -> str:
        if gate is not None:
            gate.wait(5)  # hold the RIS thread so the next units queue up behind this one
        conn.execute(text("INSERT INTO item VALUES (:n)"), {"n": name})
        return name

    return work


def _names(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.exec_driver_sql("SELECT name FROM item"))


def test_waiting_units_share_one_commit_and_a_failure_stays_alone(engine: Engine) -> None:
    commits: list[int] = []
    grouped = _committer(engine, commits)

    async def scenario() -> list[object]:
        gate = threading.Event()
        first = asyncio.create_task(grouped.run(_insert("a", gate)))
        await asyncio.sleep(0.05)  # "a" is running; the rest wait and form one group
        rest = [asyncio.create_task(grouped.run(_insert(n))) for n in ("b", "a", "c")]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[0] == "a" and results[1] == "b" and results[3] == "c"
    assert "UNIQUE" in str(results[2])  # the duplicate "a" failed alone
    assert _names(engine) == ["a", "b", "c"]
    assert len(commits) == 2  # "a" alone, then b + (rolled back a) + c together


def test_a_failed_commit_fails_every_unit_of_the_group(engine: Engine) -> None:
    commits: list[int] = []
    grouped = _committer(engine, commits)

    async def scenario() -> list[object]:
        # A deferred foreign key is checked at COMMIT: an orphan makes the commit itself fail.
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
            conn.exec_driver_sql(
                "CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
            )

        def orphan(conn: Connection) -> str:
            conn.exec_driver_sql("INSERT INTO child VALUES (42)")
            return "orphan"

        gate = threading.Event()
        first = asyncio.create_task(grouped.run(_insert("first", gate)))
        await asyncio.sleep(0.05)
        group = [asyncio.create_task(grouped.run(w)) for w in (_insert("d"), orphan)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(first, *group, return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[0] == "first"
    assert all(isinstance(r, Exception) for r in results[1:])  # nothing of the group is durable
    assert _names(engine) == ["first"]
