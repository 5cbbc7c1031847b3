"""HTTP load for the benchmarks: keep-alive connections, one client process each, timed together.

The client is a minimal HTTP/1.1 reader on a plain socket: on this machine http.client costs
~0.45 ms of CPU per 512 KB response, this one ~0.13 ms, and with one connection the client's
time per request is part of every measured round trip.
"""

from __future__ import annotations

import multiprocessing
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from urllib.parse import urlsplit

from tools.bench.dimse import pct
from tools.bench.servers import LOOPBACK, CpuMeter, Server
from tools.bench.synthetic import BenchError

Headers = dict[bytes, bytes]  # lower-case names
Check = Callable[[Headers, bytes], int]


class CheckError(Exception):
    """A response that is not the expected answer (it then counts as an error, not a request)."""


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def request(self, path: str, headers: dict[str, str]) -> bytes:
        lines = [f"GET {path} HTTP/1.1", f"Host: {LOOPBACK}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def close(self) -> None:
        if self.sock is not None:
            self.file.close()
            self.sock.close()
            self.sock = None

    def get(self, request: bytes) -> tuple[int, Headers, bytes]:
        """Send one prepared request; a keep-alive connection the server closed meanwhile is
        reopened once, as browsers do."""
        for attempt in range(2):
            fresh = self.sock is None
            if fresh:
                self.sock = socket.create_connection((LOOPBACK, self.port), timeout=300)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.file = self.sock.makefile("rb", buffering=256 * 1024)
            try:
                self.sock.sendall(request)
                status = self.file.readline()
            except (BrokenPipeError, ConnectionResetError):
                status = b""
            if status:
                break
            self.close()
            if fresh or attempt:
                raise ConnectionError("connection closed without an answer")
        headers: Headers = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            body = self.file.read(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            chunks = []
            while size := int(self.file.readline().split(b";")[0], 16):
                chunks.append(self.file.read(size))
                self.file.readline()
            while self.file.readline() not in (b"\r\n", b""):  # trailer fields
                pass
            body = b"".join(chunks)
        else:  # delimited by closing the connection; read1: large reads, not 8 KB ones
            chunks = []
            while chunk := self.file.read1(1 << 20):
                chunks.append(chunk)
            body = b"".join(chunks)
            headers[b"connection"] = b"close"
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return int(status.split()[1]), headers, body


@dataclass
class Share:
    """What one connection did in the timed section."""

    latencies: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # per request, what the check returned
    errors: list[str] = field(default_factory=list)
    nbytes: int = 0
    start: float = 0.0
    end: float = 0.0
    cpu: float = 0.0


def _client(port, paths, headers, check, count, seconds, go, pipe: Pipe) -> None:
    """Child process: one keep-alive connection sending ``paths`` in turn, at least ``count``
    requests and for at least ``seconds``, after one untimed request that opens it."""
    conn, share = Connection(port), Share()
    requests = [conn.request(path, headers) for path in paths]
    try:
        conn.get(requests[0])
    except OSError as exc:
        pipe.send(f"{type(exc).__name__}: {exc}")
        return
    pipe.send("ready")
    go.wait()
    share.cpu, share.start = time.process_time(), time.perf_counter()
    deadline, i = share.start + seconds, 0
    while i < count or time.perf_counter() < deadline:
        begun = time.perf_counter()
        try:
            status, response_headers, body = conn.get(requests[i % len(requests)])
            elapsed = time.perf_counter() - begun
            if status != 200:
                raise CheckError(f"HTTP {status} {body[:120]!r}")
            share.counts.append(check(response_headers, body))
            share.latencies.append(elapsed)
            share.nbytes += len(body)
        except (CheckError, ValueError, OSError) as exc:
            share.errors.append(f"GET {paths[i % len(paths)][:100]}: {exc!r}"[:300])
            conn.close()
        i += 1
    share.end, share.cpu = time.perf_counter(), time.process_time() - share.cpu
    pipe.send(share)


@dataclass
class Load:
    """One timed run of requests against one server."""

    shares: list[Share]
    server_cpu: float
    other_cpu: float  # CPU used meanwhile by anything but the server and the clients
    window: float  # seconds over which the CPU was measured (the run, start-up and wind-down)

    @property
    def other_load(self) -> float:
        """Share of one core that other processes used during the run."""
        return self.other_cpu / self.window

    @property
    def latencies(self) -> list[float]:
        return [x for s in self.shares for x in s.latencies]

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.shares)

    @property
    def errors(self) -> list[str]:
        return [e for s in self.shares for e in s.errors]

    @property
    def seconds(self) -> float:
        return max(s.end for s in self.shares) - min(s.start for s in self.shares)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def client_cpu(self) -> float:
        return sum(s.cpu for s in self.shares)

    def ms(self, p: int) -> float:
        """Median (p=50) or nearest-rank percentile of the latencies, in milliseconds."""
        if not self.latencies:
            return float("nan")
        return 1000 * (statistics.median(self.latencies) if p == 50 else pct(self.latencies, p))


def load(
    server: Server,
    paths: Sequence[str],
    headers: dict[str, str],
    check: Check,
    *,
    connections: int = 1,
    count: int = 0,
    seconds: float = 0.0,
) -> Load:
    """``connections`` client processes share ``paths`` (round robin), open their connection,
    then start together; timed from the first start to the last end."""
    ctx = multiprocessing.get_context("fork")
    go, pipes, procs = ctx.Event(), [], []
    port = urlsplit(server.url).port
    for k in range(connections):
        receive, send = ctx.Pipe(duplex=False)
        mine = list(paths[k::connections]) or list(paths)
        args = (port, mine, headers, check, -(-count // connections), seconds, go, send)
        procs.append(ctx.Process(target=_client, args=args, daemon=True))
        procs[-1].start()
        pipes.append(receive)
    try:
        for receive in pipes:
            if (ready := receive.recv()) != "ready":
                raise BenchError(f"{server.name}: cannot open a connection: {ready}")
        meter, began = CpuMeter(server), time.perf_counter()
        go.set()
        shares = [receive.recv() for receive in pipes]
        for proc in procs:
            proc.join()  # reaped: their CPU counts as the benchmark's own, not as other load
        server_cpu, other = meter.stop()
        window = time.perf_counter() - began
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
    return Load(shares, server_cpu, other, window)
