"""What the ``mekong`` sub-commands share: running a coroutine against a data directory's index."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from mekong.shared.config import NodeConfig
from mekong.shared.db.index import Index

T = TypeVar("T")


async def with_index(data: Path, work: Callable[[Index], Awaitable[T]]) -> T:
    config = NodeConfig(data_dir=data)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    index = await Index.open(config.index_path)
    try:
        return await work(index)
    finally:
        await index.close()
