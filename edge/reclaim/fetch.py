"""Fetch a freed blob back from the hub (issue 6 item 4, PACS-8.3): ``GET {hub}/api/hub/blobs/
{digest}`` over the enrolled mutual-TLS link, streamed to a temporary file while hashing, kept
only when its SHA-256 is the digest asked for, then renamed into the blob store — the same
bytes the edge once had, so every digest, cache and index row stays true."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import aiohttp
from sqlalchemy import delete

from mekong.shared.db.schema_uplink import reclaimed_blob

if TYPE_CHECKING:
    from mekong.shared.node import Node

CHUNK = 1024 * 1024


class FetchFailed(Exception):
    """A freed blob could not be fetched back; the message says why."""


class FetchBack:
    def __init__(self, node: Node, link: Any) -> None:
        self.node, self.link = node, link
        self.fetched = 0
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def restore(self, digests: Iterable[str]) -> None:
        """Make every blob in ``digests`` local again (those present are left alone)."""
        for digest in dict.fromkeys(digests):
            async with self._locks[digest]:
                await self._restore_one(digest)

    async def _restore_one(self, digest: str) -> None:
        blobs, index = self.node.blobs, self.node.index
        assert blobs is not None and index is not None
        if not blobs.path_for(digest).exists():
            if not self.link.ready:
                raise FetchFailed("the edge is not enrolled at a hub")
            temp = blobs.tmp / uuid.uuid4().hex
            try:
                await self._download(digest, temp)
                stored = await asyncio.to_thread(blobs.adopt, temp, digest)
            finally:
                temp.unlink(missing_ok=True)
            await asyncio.to_thread(blobs.sync_dirs, {stored.path})
            blobs.release(stored.hold)
            self.fetched += 1
        await index.transaction(
            lambda conn: conn.execute(
                delete(reclaimed_blob).where(reclaimed_blob.c.digest == digest)
            )
        )

    async def _download(self, digest: str, temp: Any) -> None:
        url = f"{self.link.base_url}/api/hub/blobs/{digest}"
        sha = hashlib.sha256()
        timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, ssl=self.link.ssl_context()) as reply,
            ):
                if reply.status != 200:
                    text = (await reply.text())[:200]
                    raise FetchFailed(f"the hub answered {reply.status}: {text}")
                with open(temp, "wb") as out:
                    async for chunk in reply.content.iter_chunked(CHUNK):
                        sha.update(chunk)
                        out.write(chunk)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise FetchFailed(f"the hub is not reachable: {error!r}") from None
        if sha.hexdigest() != digest:
            raise FetchFailed(f"the hub sent other content for {digest[:12]}…: not kept")
