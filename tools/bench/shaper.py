"""A bandwidth-limited TCP proxy for the replication benchmark: a WAN link on loopback.

One token bucket per direction, shared by every connection (a link, not a per-connection cap),
so N parallel transfers share the rate as they would on a real uplink. ``delay`` adds a fixed
one-way latency per direction without limiting the rate (chunks wait in a bounded queue).
``measure()`` times a raw transfer through the proxy: the rate actually achieved, reported as
the link rate by the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass

from tests.nodeproc import free_port

CHUNK = 16 * 1024  # bytes read, shaped and written at a time
IDLE = 0.05  # a pause longer than this between chunks towards the target: the link idles
BULK = 256 * 1024  # a run of this many bytes without a pause: the transfer has begun
QUEUE = 256  # chunks in flight per direction of a connection (4 MB: far above rate × delay)


class Bucket:
    """Token bucket of bytes: ``reserve(n, now)`` takes ``n`` bytes and says how long to wait
    before they may go. It holds at most ``burst`` bytes, so an idle link never sends faster
    than ``rate`` for more than ``burst`` bytes."""

    def __init__(self, rate: float, burst: float = CHUNK) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be > 0")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp: float | None = None

    def reserve(self, amount: int, now: float) -> float:
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= amount
        return max(0.0, -self.tokens / self.rate)


@dataclass
class LinkRate:
    """A raw transfer through the proxy: bytes and seconds per direction."""

    up_bytes: int
    up_seconds: float
    down_bytes: int
    down_seconds: float

    @property
    def up(self) -> float:
        return self.up_bytes / self.up_seconds

    @property
    def down(self) -> float:
        return self.down_bytes / self.down_seconds


class ShapedProxy:
    """Loopback proxy to ``target`` on its own event-loop thread, ``rate`` bytes/s each way."""

    def __init__(self, rate: float, target: int = 0, delay: float = 0.0) -> None:
        self.rate = rate
        self.target = target  # may be changed between runs
        self.delay = delay
        self.port = free_port()
        self.up = Bucket(rate)  # client → target
        self.down = Bucket(rate)  # target → client
        self.reset()
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, coroutine, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> ShapedProxy:
        self._call(self._start())
        return self

    def close(self) -> None:
        """Stop listening, cut every connection and end the thread."""
        self._call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def reset(self) -> None:
        """Start counting the bytes (and the time of the first byte) towards the target."""
        self.up_bytes = 0  # bytes client → target since the last reset()
        self.last_up = 0.0  # monotonic time of the last byte client → target
        self.burst = (0.0, 0)  # the current run of bytes without a pause: (start, bytes)
        self.first_up: float | None = None  # start of the first run of >= BULK bytes
        self.idle: list[float] = []  # pauses > IDLE between bytes client → target, after it

    def measure(self, up_bytes: int, down_bytes: int) -> LinkRate:
        """Time ``up_bytes`` sent and ``down_bytes`` received through the proxy (one direction
        after the other) against a sink/source on loopback; the proxy's target is restored."""
        return self._call(self._measure(up_bytes, down_bytes), timeout=600)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            self._tasks.discard(task)
            return
        for sock_writer in (writer, up_writer):
            sock = sock_writer.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, self.up), self._pipe(up_reader, writer, self.down)
            )
        except asyncio.CancelledError:
            pass  # the proxy closes: the connection is cut
        finally:
            writer.transport.abort()
            up_writer.transport.abort()
            self._tasks.discard(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bucket: Bucket
    ) -> None:
        """Copy one direction: read, wait for the bucket, queue with its due time, write."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE)
        sender = asyncio.create_task(self._send(queue, writer))
        try:
            while data := await reader.read(CHUNK):
                if bucket is self.up:
                    self._count_up(len(data), time.monotonic())
                wait = bucket.reserve(len(data), time.monotonic())
                if wait:
                    await asyncio.sleep(wait)
                await queue.put((time.monotonic() + self.delay, data))
            await queue.put((0.0, b""))  # end of stream
            await sender
        except OSError:
            pass
        finally:
            sender.cancel()

    def _count_up(self, size: int, now: float) -> None:
        """Small exchanges (an enrolled edge's health reports, polls) do not start the count:
        the first run of >= BULK bytes without a pause does."""
        paused = now - self.last_up > IDLE
        if paused and self.first_up is not None:
            self.idle.append(now - self.last_up)
        start, count = (now, 0) if paused else self.burst
        self.burst = start, count + size
        if self.first_up is None and count + size >= BULK:
            self.first_up = start
        self.last_up = now
        self.up_bytes += size

    @staticmethod
    async def _send(
        queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        while True:
            due, data = await queue.get()
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            if (late := due - time.monotonic()) > 0:
                await asyncio.sleep(late)
            writer.write(data)
            await writer.drain()

    async def _measure(self, up_bytes: int, down_bytes: int) -> LinkRate:
        saved, done = self.target, asyncio.get_running_loop().create_future()

        async def endpoint(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            mode = await reader.readexactly(1)
            if mode == b"u":  # sink: count until EOF, then report when the last byte came
                got = 0
                while data := await reader.read(1 << 16):
                    got += len(data)
                done.set_result((got, time.monotonic()))
            else:  # source
                await _write_zeros(writer, down_bytes)
            writer.close()

        server = await asyncio.start_server(endpoint, "127.0.0.1", 0)
        self.target = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            start = time.monotonic()
            writer.write(b"u")
            await _write_zeros(writer, up_bytes)
            writer.write_eof()
            got, end = await done
            writer.close()
            up = (got, end - start)
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            start, got = time.monotonic(), 0
            writer.write(b"d")
            while data := await reader.read(1 << 16):
                got += len(data)
            down = (got, time.monotonic() - start)
            writer.close()
        finally:
            server.close()
            self.target = saved
        return LinkRate(up[0], up[1], down[0], down[1])


async def _write_zeros(writer: asyncio.StreamWriter, count: int) -> None:
    block = bytes(1 << 16)
    while count > 0:
        writer.write(block[: min(count, len(block))])
        count -= len(block)
        await writer.drain()
