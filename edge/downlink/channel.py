"""How the edge reaches its hub for bundles: with the uplink's API token (``[uplink] url`` +
``token``, key from ``uplink.bundle_key``), or through the enrolled mutual-TLS link (``[hub]``),
where the hub's bundle key is fetched once over that pinned channel and kept in
``DATA/hub/bundle-key.pub`` — never replaced afterwards, so a later bundle cannot bring its
own key."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from mekong.shared.config import UplinkConfig
from mekong.shared.storage.files import create_file


class Channel(Protocol):
    @property
    def ready(self) -> bool: ...

    def base_url(self) -> str: ...

    def request_args(self) -> dict[str, Any]: ...

    async def bundle_key(self, session: aiohttp.ClientSession) -> str: ...


class TokenChannel:
    def __init__(self, config: UplinkConfig) -> None:
        self.config = config
        self.ready = True

    def base_url(self) -> str:
        return self.config.url.rstrip("/").removesuffix("/dicom-web")

    def request_args(self) -> dict[str, Any]:
        return {"headers": {"Authorization": f"Bearer {self.config.token}"}}

    async def bundle_key(self, session: aiohttp.ClientSession) -> str:
        return self.config.bundle_key


class LinkChannel:
    """The enrolled link (``edge.hub.link.HubLink``)."""

    def __init__(self, link: Any, data_dir: Path) -> None:
        self.link = link
        self.key_file = data_dir / "hub" / "bundle-key.pub"

    @property
    def ready(self) -> bool:
        return bool(self.link.ready)

    def base_url(self) -> str:
        return str(self.link.base_url)

    def request_args(self) -> dict[str, Any]:
        return {"ssl": self.link.ssl_context()}

    async def bundle_key(self, session: aiohttp.ClientSession) -> str:
        if not self.key_file.exists():
            url = f"{self.base_url()}/api/hub/config-bundle/key"
            async with session.get(url, **self.request_args()) as reply:
                reply.raise_for_status()
                key = str((await reply.json())["public_key"])
            with contextlib.suppress(FileExistsError):
                create_file(self.key_file, key.encode())
        return self.key_file.read_text().strip()
