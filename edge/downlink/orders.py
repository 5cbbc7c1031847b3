"""The edge's orders component ``orders-downlink`` (issue 6 item 3): the site's orders from
the hub, so the modalities here find the HIS's orders in this edge's worklist.

Every ``uplink.orders_interval`` seconds: ``GET {hub}/api/hub/orders?after=CURSOR`` over the
enrolled link, each snapshot applied in its own transaction (:mod:`edge.downlink.replica`),
then the cursor saved (``DATA/downlink/orders.json``, durable). A snapshot that cannot be
applied is logged and skipped — the cursor still moves, so one bad order never blocks the
others — and shown in the health section. After a crash the last page is applied again:
applying a snapshot twice changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from mekong.edge.downlink.channel import Channel
from mekong.edge.downlink.replica import apply_snapshot
from mekong.shared.background import Background
from mekong.shared.ris.errors import DomainError
from mekong.shared.storage.files import replace_file

if TYPE_CHECKING:
    from mekong.shared.node import Node

log = logging.getLogger(__name__)


class OrdersPuller(Background):
    name = "orders-downlink"

    def __init__(self, node: Node, channel: Channel, interval: float) -> None:
        self.node, self.channel, self.interval = node, channel, interval
        self.cursor_file = node.config.data_dir / "downlink" / "orders.json"
        self.applied = 0
        self.last_error = ""
        self.last_check: float | None = None

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            while True:
                more = False
                if self.channel.ready:
                    try:
                        more = await self.pull(session)
                    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                        self._note_error(f"hub not reachable for orders: {error!r}")
                if not more:
                    await asyncio.sleep(self.interval)

    async def pull(self, session: aiohttp.ClientSession) -> bool:
        """One page from the hub, applied; True when the hub has more."""
        self.last_check = time.time()
        url = f"{self.channel.base_url()}/api/hub/orders"
        params = {"after": repr(_cursor(self.cursor_file))}
        async with session.get(url, params=params, **self.channel.request_args()) as reply:
            if reply.status != 200:
                text = (await reply.text())[:200]
                raise aiohttp.ClientResponseError(reply.request_info, (), status=reply.status,
                                                  message=text)  # fmt: skip
            page = await reply.json()
        for snapshot in page["orders"]:
            await self._apply(snapshot)
        replace_file(self.cursor_file, json.dumps({"after": page["next"]}).encode())
        if not page["orders"]:
            self.last_error = ""
        return bool(page.get("more"))

    async def _apply(self, snapshot: dict[str, Any]) -> None:
        assert self.node.index is not None
        changes: list[str] = []
        accession = snapshot.get("accession", "?")
        try:
            done = await self.node.index.transaction(
                lambda conn: apply_snapshot(conn, snapshot, changes)
            )
        except (DomainError, KeyError, ValueError) as error:
            self._note_error(f"order {accession} from the hub not applied: {error}")
            return
        self.applied += 1
        self.last_error = ""
        log.info("order %s from the hub: %s", accession, done)

    def _note_error(self, message: str) -> None:
        if message != self.last_error:
            log.warning("orders downlink: %s", message)
        self.last_error = message

    async def health(self) -> dict[str, Any]:
        return {"state": self.state, "applied": self.applied, "last_check": self.last_check,
                "cursor": _cursor(self.cursor_file), "last_error": self.last_error}  # fmt: skip


def _cursor(path: Path) -> float:
    if not path.exists():
        return 0.0
    return float(json.loads(path.read_text())["after"])
