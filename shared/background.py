"""The start/stop scaffolding of a node component that is one asyncio task running a loop."""

from __future__ import annotations

import asyncio


class Background:
    """A component whose work is ``_run()``, a loop started with the node and cancelled at stop.

    Subclasses set ``name`` and write ``_run``; a subclass that prepares something first or
    cleans up after overrides ``start``/``stop`` and calls these.
    """

    name: str
    state: str = "stopped"
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)
        self.state = "running"

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)  # also a loop that died
        self.state = "stopped"

    async def _run(self) -> None:
        raise NotImplementedError
