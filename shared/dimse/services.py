"""What the DIMSE handlers share: the archive, the index, the AE policy and the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from pynetdicom.events import Event

from mekong.shared.archive import Archive
from mekong.shared.config import NodeConfig
from mekong.shared.db.index import Index
from mekong.shared.dimse.policy import AePolicy
from mekong.shared.storage.blobs import BlobStore

T = TypeVar("T")
_QUERY_TIMEOUT = 60.0


@dataclass
class Services:
    archive: Archive
    index: Index
    policy: AePolicy
    loop: asyncio.AbstractEventLoop
    ae_title: str

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run an index coroutine on the node's loop from an association thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(_QUERY_TIMEOUT)


async def open_services(config: NodeConfig, index: Index, blobs: BlobStore) -> Services:
    """The archive and AE policy over an open index, as both the node and a worker need."""
    loop = asyncio.get_running_loop()
    archive = Archive(index, blobs)
    policy = AePolicy(index, config.dicom.unknown_callers == "accept")
    await policy.start()
    return Services(archive, index, policy, loop, config.dicom.ae_title)


def calling_ae(event: Event) -> str:
    return str(event.assoc.requestor.ae_title).strip()
