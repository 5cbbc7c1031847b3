"""The edge's ``status-upstream`` component (issue 6 item 2): the order status changes
recorded in ``upstream_event`` (:mod:`mekong.shared.ris.upstream`) go to the hub in the order
they happened, over the enrolled mutual-TLS link. A row is ``sent`` once the hub answered 200,
``refused`` (kept with the hub's reason, not retried) on a 4xx; on no answer or a 5xx the rest
wait and the component backs off (capped), so the order of events is never shuffled."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from sqlalchemy import func, select, update

from mekong.edge.hub.link import HubLink
from mekong.edge.uplink.policy import backoff
from mekong.shared.background import Background
from mekong.shared.db.schema_uplink import upstream_event

if TYPE_CHECKING:
    from mekong.shared.node import Node

log = logging.getLogger(__name__)
BATCH = 50


class StatusUpstream(Background):
    name = "status-upstream"

    def __init__(self, node: Node, link: HubLink, interval: float) -> None:
        self.node, self.link, self.interval = node, link, interval
        self.failures = 0
        self.last_error = ""

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            while True:
                delay = self.interval
                if self.link.ready:
                    try:
                        await self.send_pending(session)
                        self.failures = 0
                    except (aiohttp.ClientError, TimeoutError, RuntimeError) as error:
                        self.failures += 1
                        self._note_error(str(error) or repr(error))
                        delay = backoff(self.failures, self.interval, 60.0)
                await asyncio.sleep(delay)

    async def send_pending(self, session: aiohttp.ClientSession) -> None:
        index = self.node.index
        assert index is not None
        query = (select(upstream_event).where(upstream_event.c.state == "pending")
                 .order_by(upstream_event.c.id).limit(BATCH))  # fmt: skip
        rows = await index.reading(lambda conn: conn.execute(query).all())
        for row in rows:
            state, note = await self._post(session, row)
            await index.transaction(lambda conn, row=row, state=state, note=note: conn.execute(
                update(upstream_event).where(upstream_event.c.id == row.id).values(
                    state=state, last_error=note, attempts=row.attempts + 1,
                    sent_at=time.time())))  # fmt: skip
            if state == "refused":
                log.warning("hub refused status %s of order %s: %s", row.status, row.accession,
                            note)  # fmt: skip
        self.last_error = ""

    async def _post(self, session: aiohttp.ClientSession, row: Any) -> tuple[str, str]:
        url = f"{self.link.base_url}/api/hub/order-status"
        body = {"accession": row.accession, "status": row.status}
        async with session.post(url, json=body, ssl=self.link.ssl_context()) as reply:
            text = await reply.text()
            if reply.status == 200:
                return "sent", ""
            if 400 <= reply.status < 500:
                return "refused", f"HTTP {reply.status}: {text[:300]}"
            raise RuntimeError(f"hub answered {reply.status}: {text[:200]}")

    def _note_error(self, message: str) -> None:
        if message != self.last_error:
            log.warning("order status to the hub: %s", message)
        self.last_error = message

    async def health(self) -> dict[str, Any]:
        index = self.node.index
        assert index is not None
        query = select(upstream_event.c.state, func.count()).group_by(upstream_event.c.state)
        counts = await index.reading(lambda conn: dict(conn.execute(query).all()))
        return {"state": self.state, "counts": counts, "last_error": self.last_error}
