"""A stand-in HIS for outbound HL7 tests: a small asyncio MLLP server (python-hl7) on its own
thread that records every message and acknowledges it (AA unless told otherwise)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hl7.mllp import start_hl7_server

Answer = Callable[[str], str]  # message text -> "AA", "AE", "AR" or "" (no answer)


@dataclass
class Received:
    text: str

    def segment(self, name: str) -> list[str]:
        """Fields of the first ``name`` segment (fields[n] is field n; MSH counted as HL7 does)."""
        for seg in self.text.split("\r"):
            if seg.startswith(name + "|"):
                fields = seg.split("|")
                return ["MSH", "|", *fields[1:]] if name == "MSH" else fields
        return []

    def field(self, name: str, number: int) -> str:
        fields = self.segment(name)
        return fields[number] if number < len(fields) else ""

    @property
    def control_id(self) -> str:
        return self.field("MSH", 10)


@dataclass
class HisListener:
    port: int
    answer: Answer = field(default=lambda _text: "AA")
    received: list[Received] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> HisListener:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(10), "the test HIS did not start"
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop = None

    def control_ids(self) -> list[str]:
        return [m.control_id for m in self.received]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(list(self.received)):
                return
            time.sleep(0.05)
        raise AssertionError(f"the test HIS did not get what was expected: {self.received}")

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            start_hl7_server(self._handle, "127.0.0.1", self.port, encoding="utf-8")
        )
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader, writer) -> None:  # type: ignore[no-untyped-def]
        try:
            while not writer.is_closing():
                block = await reader.readblock()
                text = bytes(block).decode("utf-8")
                message = Received(text)
                self.received.append(message)
                code = self.answer(text)
                if code:
                    writer.writeblock(ack(message, code).encode("utf-8"))
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def ack(message: Received, code: str) -> str:
    msh = f"MSH|^~\\&|HIS|BVCR|MEKONG||20261126080000||ACK|A{message.control_id}|P|2.3.1"
    segments = [msh, f"MSA|{code}|{message.control_id}"]
    if code != "AA":
        segments.append("ERR||PID^1^3|204^Unknown key identifier^HL70357|E||||"
                        "Mã bệnh nhân không tồn tại")  # fmt: skip
    return "\r".join(segments) + "\r"
