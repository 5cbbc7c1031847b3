"""The HTTP listener component (aiohttp). Routes live in one module per resource."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from mekong.shared import console
from mekong.shared.dicomweb import qido, rendered, retrieve, stow, wado_uri
from mekong.shared.dicomweb.state import STATE_KEY, DicomwebState
from mekong.shared.http import (
    admin,
    aes,
    audit_api,
    auth,
    health,
    hl7log,
    iid,
    mobile,
    openapi,
    orders,
    originals,
    outbox,
    unmatched,
    users,
    viewer,
)
from mekong.shared.http.access import access
from mekong.shared.http.errors import json_errors
from mekong.shared.tls import server_context

if TYPE_CHECKING:
    from mekong.shared.node import Node

log = logging.getLogger(__name__)
NODE_KEY: web.AppKey[Node] = web.AppKey("node")


# viewer stays last: its catch-all /{path:.*} must be registered after every other route
ROUTE_MODULES = (
    health, openapi, auth, users, admin, aes, audit_api, mobile, orders, hl7log, unmatched,
    outbox, qido, retrieve, rendered, stow, wado_uri, iid, originals,
    *console.ROUTE_MODULES, viewer,
)  # fmt: skip


class HttpServer:
    name = "http"

    def __init__(self, node: Node) -> None:
        self.node = node
        self.app = web.Application(middlewares=[json_errors, access], client_max_size=1024**3)
        self.app[NODE_KEY] = node
        assert node.index and node.blobs and node.archive, "open storage before HTTP"
        self.app[STATE_KEY] = DicomwebState(node.index, node.blobs, node.archive)
        for module in ROUTE_MODULES:
            self.app.add_routes(module.routes)
        console.install(self.app)
        viewer.install(self.app, node.config.http)
        self._runner: web.AppRunner | None = None
        self.state = "stopped"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        config = self.node.config
        context = None
        if config.tls.enabled:
            client_ca = Path(config.tls.client_ca) if config.tls.client_ca else None
            context = server_context(Path(config.tls.cert), Path(config.tls.key), client_ca)
        site = web.TCPSite(
            self._runner, config.bind, config.http.port, shutdown_timeout=10, ssl_context=context
        )
        await site.start()
        self.state = "running"

    async def stop(self) -> None:
        if self._runner:
            self.state = "draining"
            await self._runner.cleanup()
        self.state = "stopped"
