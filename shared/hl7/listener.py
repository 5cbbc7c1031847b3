"""The HL7 MLLP listener component ``hl7`` on ``bind:hl7.port`` (RIS-6.1, RIS-9.1).

Framing comes from python-hl7's asyncio MLLP streams (``start_hl7_server``), used at the block
level (``readblock`` / ``writeblock``, bytes): its ``readmessage`` decodes with one fixed
codec, while each message here is decoded by its own MSH-18. Messages on one connection are
answered in order, one at a time; a block with no start byte is skipped and logged.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from hl7.mllp import InvalidBlockError, start_hl7_server

from mekong.shared.config import TlsConfig
from mekong.shared.hl7.receiver import Receiver
from mekong.shared.tls import server_context

if TYPE_CHECKING:
    from hl7.mllp import HL7StreamReader, HL7StreamWriter

    from mekong.shared.node import Node

log = logging.getLogger(__name__)
MAX_MESSAGE = 16 * 1024 * 1024  # bytes; a bigger block is dropped with a log line
DRAIN_SECONDS = 10.0


class Hl7Listener:
    name = "hl7"

    def __init__(self, node: Node) -> None:
        assert node.index is not None
        self.node = node
        audit = node.audit.record if node.audit else None
        self.receiver = Receiver(node.index, "MEKONG", node.config.dicom.ae_title, audit)
        self.state = "stopped"
        self._servers: list[asyncio.Server] = []
        self._idle: dict[asyncio.Task, bool] = {}

    async def start(self) -> None:
        config = self.node.config
        self._servers = [
            await start_hl7_server(self._serve, config.bind, config.hl7.port, limit=MAX_MESSAGE)
        ]
        if config.hl7.tls_port:  # the same service behind TLS (SEC "use SSL", IHE ATNA-style)
            self._servers.append(await start_hl7_server(
                self._serve, config.bind, config.hl7.tls_port, limit=MAX_MESSAGE,
                ssl=_tls_context(config.tls)))  # fmt: skip
        self.state = "running"

    async def stop(self) -> None:
        if not self._servers:
            return
        self.state = "draining"
        for server in self._servers:
            server.close()
        for task, idle in list(self._idle.items()):
            if idle:
                task.cancel()
        busy = list(self._idle)
        if busy:
            await asyncio.wait(busy, timeout=DRAIN_SECONDS)
        self.state = "stopped"

    async def _serve(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        self._idle[task] = True
        try:
            while self.state == "running":
                block = await self._read(reader, peer)
                if block is None:
                    break
                self._idle[task] = False
                writer.writeblock(await self.receiver.handle(block))
                await writer.drain()
                self._idle[task] = True
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._idle.pop(task, None)
            writer.close()

    @staticmethod
    async def _read(reader: HL7StreamReader, peer: object) -> bytes | None:
        """The next block, skipping bad framing; None when the peer closed."""
        while True:
            try:
                return bytes(await reader.readblock())
            except asyncio.IncompleteReadError:
                return None
            except InvalidBlockError:
                log.warning("HL7 from %s: data without the MLLP start byte skipped", peer)
            except ValueError:
                log.warning("HL7 from %s: message over %d bytes dropped", peer, MAX_MESSAGE)


def _tls_context(tls: TlsConfig) -> ssl.SSLContext:
    client_ca = Path(tls.client_ca) if tls.client_ca else None
    return server_context(Path(tls.cert), Path(tls.key), client_ca)
