"""The edge's ``originals-upstream`` component (issue 6 item 2; PACS-5.4): each non-DICOM
original goes to the hub once the instance made from it is confirmed there (outbox ``sent``
and ``verified``), over the enrolled mutual-TLS link; ``original_sent`` records it after the
hub repeated its SHA-256. A 409 (the instance is not at the hub yet) just waits for a later
round."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from sqlalchemy import and_, insert, select

from mekong.edge.hub.link import HubLink
from mekong.shared.background import Background
from mekong.shared.db.originals import import_original
from mekong.shared.db.schema_uplink import original_sent, uplink_outbox

if TYPE_CHECKING:
    from mekong.shared.node import Node

log = logging.getLogger(__name__)
BATCH = 20


class OriginalsUpstream(Background):
    name = "originals-upstream"

    def __init__(self, node: Node, link: HubLink, interval: float) -> None:
        self.node, self.link, self.interval = node, link, interval
        self.sent = 0
        self.last_error = ""

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if self.link.ready:
                    try:
                        await self.send_due(session)
                    except (aiohttp.ClientError, TimeoutError, RuntimeError) as error:
                        if str(error) != self.last_error:
                            log.warning("originals to the hub: %s", error)
                        self.last_error = str(error) or repr(error)
                await asyncio.sleep(self.interval)

    async def send_due(self, session: aiohttp.ClientSession) -> None:
        index = self.node.index
        assert index is not None
        confirmed = and_(
            uplink_outbox.c.sop_uid == import_original.c.sop_uid,
            uplink_outbox.c.state == "sent",
            uplink_outbox.c.verified.is_(True),
        )
        query = (
            select(import_original).join(uplink_outbox, confirmed)
            .outerjoin(original_sent, original_sent.c.original_fk == import_original.c.id)
            .where(original_sent.c.original_fk.is_(None))
            .order_by(import_original.c.id).limit(BATCH)
        )  # fmt: skip
        for row in await index.reading(lambda conn: conn.execute(query).all()):
            if await self._put(session, row):
                done = insert(original_sent).values(original_fk=row.id, sent_at=time.time())
                await index.transaction(lambda conn, done=done: conn.execute(done))
                self.sent += 1
        self.last_error = ""

    async def _put(self, session: aiohttp.ClientSession, row: Any) -> bool:
        assert self.node.blobs is not None
        url = f"{self.link.base_url}/api/hub/originals/{row.sop_uid}"
        headers = {"Content-Type": row.media_type, "X-Mekong-SHA256": row.digest,
                   "X-Mekong-Filename": quote(row.filename, safe=""),
                   "X-Mekong-Accession": row.accession, "X-Mekong-Device": row.device}  # fmt: skip
        with open(self.node.blobs.path_for(row.digest), "rb") as body:
            async with session.put(url, data=body, headers=headers,
                                   ssl=self.link.ssl_context()) as reply:  # fmt: skip
                if reply.status in (200, 201):
                    return (await reply.json())["digest"] == row.digest
                if reply.status == 409:
                    return False  # the instance is not at the hub yet
                raise RuntimeError(f"hub answered {reply.status}: {(await reply.text())[:200]}")

    async def health(self) -> dict[str, Any]:
        return {"state": self.state, "sent": self.sent, "last_error": self.last_error}
