"""What the DIMSE handlers share: the archive, the index, the AE policy and the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from pynetdicom.events import Event

from mekong.shared.archive import Archive
from mekong.shared.audit.log import AuditLog
from mekong.shared.audit.trail import AuditEvent
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
    audit: AuditLog

    def record(self, event: Event, action: str, outcome: str = "success", **detail: Any) -> None:
        """Audit a DIMSE operation (from an association thread): calling AE and its address."""
        requestor = event.assoc.requestor
        audit_event = AuditEvent(
            calling_ae(event), "ae", action, outcome, f"{requestor.address}:{requestor.port}",
            str(detail.pop("object", "")), str(detail.pop("patient_id", "")), detail,
        )  # fmt: skip
        self.loop.call_soon_threadsafe(self.audit.record, audit_event)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run an index coroutine on the node's loop from an association thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(_QUERY_TIMEOUT)


async def open_services(config: NodeConfig, index: Index, blobs: BlobStore) -> Services:
    """The archive and AE policy over an open index, as both the node and a worker need."""
    loop = asyncio.get_running_loop()
    archive = Archive(index, blobs)
    policy = AePolicy(index, config.dicom.unknown_callers == "accept")
    await policy.start()
    audit = AuditLog(config.index_path)  # started by its owner (the node, or a worker)
    return Services(archive, index, policy, loop, config.dicom.ae_title, audit)


def calling_ae(event: Event) -> str:
    return str(event.assoc.requestor.ae_title).strip()
