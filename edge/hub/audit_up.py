"""The edge's ``audit-upstream`` component (issue 6 item 2; SEC-7): its sealed audit events
go to the hub in id order over the enrolled mutual-TLS link, 500 at a time. The cursor
(``DATA/hub/audit-cursor.json``) moves to what the hub says it holds, after its answer — so a
lost answer means a resend the hub recognises, never a gap."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from mekong.edge.hub.link import HubLink
from mekong.shared.audit.sites import sealed_after
from mekong.shared.background import Background
from mekong.shared.storage.files import replace_file

if TYPE_CHECKING:
    from mekong.shared.node import Node

log = logging.getLogger(__name__)
BATCH = 500


class AuditUpstream(Background):
    name = "audit-upstream"

    def __init__(self, node: Node, link: HubLink, interval: float) -> None:
        self.node, self.link, self.interval = node, link, interval
        self.cursor_file = node.config.data_dir / "hub" / "audit-cursor.json"
        self.sent = 0
        self.last_error = ""

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            while True:
                more = False
                if self.link.ready:
                    try:
                        more = await self.send_batch(session)
                        self.last_error = ""
                    except (aiohttp.ClientError, TimeoutError, RuntimeError) as error:
                        if str(error) != self.last_error:
                            log.warning("audit trail to the hub: %s", error)
                        self.last_error = str(error) or repr(error)
                if not more:
                    await asyncio.sleep(self.interval)

    async def send_batch(self, session: aiohttp.ClientSession) -> bool:
        """One batch; True when a full batch went (there may be more)."""
        db = self.node.config.index_path
        events = await asyncio.to_thread(sealed_after, db, self.cursor(), BATCH)
        if not events:
            return False
        url = f"{self.link.base_url}/api/hub/audit"
        async with session.post(url, json={"events": events}, ssl=self.link.ssl_context()) as reply:
            if reply.status != 200:
                raise RuntimeError(f"hub answered {reply.status}: {(await reply.text())[:200]}")
            answer = await reply.json()
        replace_file(self.cursor_file, json.dumps({"after": int(answer["last"])}).encode())
        self.sent += int(answer["stored"])
        return len(events) == BATCH

    def cursor(self) -> int:
        if not self.cursor_file.exists():
            return 0
        return int(json.loads(self.cursor_file.read_text())["after"])

    async def health(self) -> dict[str, Any]:
        return {"state": self.state, "sent": self.sent, "cursor": self.cursor(),
                "last_error": self.last_error}  # fmt: skip
