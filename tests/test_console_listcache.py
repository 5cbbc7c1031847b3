"""The console's shared fragment cache: one computation for concurrent callers, emptied by an
order change (and once more just after it), never keeping a failure, bounded in time."""

from __future__ import annotations

import asyncio

import pytest

from mekong.shared.console import listcache
from mekong.shared.console.listcache import FragmentCache
from mekong.shared.ris import events


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def counter() -> tuple[list[int], object]:
    made: list[int] = []

    async def make() -> str:
        made.append(1)
        await asyncio.sleep(0.05)
        return f"table {len(made)}"

    return made, make


def test_concurrent_callers_share_one_computation() -> None:
    async def scenario() -> None:
        cache, (made, make) = FragmentCache(), counter()
        answers = await asyncio.gather(*[cache.get("k", make) for _ in range(20)])  # type: ignore[arg-type]
        assert answers == ["table 1"] * 20 and len(made) == 1
        assert await cache.get("k", make) == "table 1"  # type: ignore[arg-type]
        assert await cache.get("other", make) == "table 2"  # type: ignore[arg-type]

    run(scenario())


def test_clear_and_time_limit_make_it_again() -> None:
    async def scenario() -> None:
        cache, (_, make) = FragmentCache(ttl=0.2), counter()
        await cache.get("k", make)  # type: ignore[arg-type]
        cache.clear()
        assert await cache.get("k", make) == "table 2"  # type: ignore[arg-type]
        await asyncio.sleep(0.25)
        assert await cache.get("k", make) == "table 3"  # type: ignore[arg-type]

    run(scenario())


def test_an_entry_made_while_an_order_changed_is_not_kept() -> None:
    async def scenario() -> None:
        cache, (_, make) = FragmentCache(), counter()
        first = asyncio.ensure_future(cache.get("k", make))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        cache.clear()  # while it is being made
        assert await first == "table 1"
        assert await cache.get("k", make) == "table 2"  # type: ignore[arg-type]

    run(scenario())


def test_a_failure_is_not_kept() -> None:
    async def scenario() -> None:
        cache, calls = FragmentCache(), []

        async def make() -> str:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("database busy")
            return "table"

        with pytest.raises(RuntimeError):
            await cache.get("k", make)
        assert await cache.get("k", make) == "table"

    run(scenario())


def test_an_order_change_empties_it_now_and_just_after() -> None:
    async def scenario() -> None:
        from aiohttp import web

        app = web.Application()
        listcache.install(app)
        for start in app.on_startup:
            await start(app)
        cache = app[listcache.CACHE]
        await asyncio.sleep(0)  # the follower subscribes
        before = cache.generation
        events.order_changed("ACC1")
        await asyncio.sleep(listcache.AFTER_COMMIT + 0.1)
        assert cache.generation == before + 2
        for stop in app.on_shutdown:
            await stop(app)

    run(scenario())
