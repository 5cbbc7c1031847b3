"""Who may talk to this node: the known-AE table and the policy for unknown callers (PACS-3).

The table lives in the index (``mekong ae add|list|remove``); a refresher task reloads it every
second so changes apply to the running node without a restart. Lookups happen on association
threads and read an immutable snapshot.
"""

from __future__ import annotations

import asyncio
import logging

from mekong.shared.db.index import Index, RemoteAE

log = logging.getLogger(__name__)

SERVICES = ("echo", "store", "find", "get", "move")
_REFRESH_SECONDS = 1.0


class AePolicy:
    def __init__(self, index: Index, accept_unknown: bool) -> None:
        self._index = index
        self.accept_unknown = accept_unknown
        self._known: dict[str, RemoteAE] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name="ae-policy-refresh")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def refresh(self) -> None:
        self._known = {ae.title: ae for ae in await self._index.remote_aes()}

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(_REFRESH_SECONDS)
            try:
                await self.refresh()
            except Exception:  # a locked or busy database: keep the last snapshot
                log.warning("could not reload the AE table", exc_info=True)

    def known(self, title: str) -> RemoteAE | None:
        return self._known.get(title.strip())

    def known_titles(self) -> list[str]:
        return list(self._known)

    def is_accepted(self, calling_ae: str) -> bool:
        return self.accept_unknown or self.known(calling_ae) is not None

    def allows(self, calling_ae: str, service: str) -> bool:
        ae = self.known(calling_ae)
        if ae is None:
            return self.accept_unknown  # C-MOVE still needs a known destination
        return service in ae.allow

    def fuzzy_find(self, calling_ae: str) -> bool:
        ae = self.known(calling_ae)
        return bool(ae and ae.fuzzy_find)

    def ascii_worklist(self, calling_ae: str) -> bool:
        """Whether worklist answers to this AE are folded to ASCII (old modalities)."""
        ae = self.known(calling_ae)
        return bool(ae and ae.ascii_worklist)
