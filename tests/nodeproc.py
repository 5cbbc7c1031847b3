"""Run a real Mekong node as a subprocess on free loopback ports, for tests and benchmarks.

With ``MEKONG_BINARY`` set (``make test-binary``), nodes and ``mekong`` commands run that built
binary instead, in a clean environment: no venv, no PYTHONPATH, only the system PATH.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

AE_TITLE = "MEKONG"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peer_env() -> dict[str, str]:
    """Environment for DCMTK tools: TCP_NODELAY=1 or they stall ~45 ms per message here."""
    return {**os.environ, "TCP_NODELAY": "1"}


def mekong_command(*args: str) -> list[str]:
    """The ``mekong`` command line: the built binary if ``MEKONG_BINARY`` is set, else this
    Python's ``-m mekong.shared.cli``."""
    binary = os.environ.get("MEKONG_BINARY")
    return [binary, *args] if binary else [sys.executable, "-m", "mekong.shared.cli", *args]


def mekong_env() -> dict[str, str]:
    """The environment of a node or ``mekong`` command (see ``mekong_command``)."""
    if not os.environ.get("MEKONG_BINARY"):
        return peer_env()
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "TCP_NODELAY": "1"}


_PORTS = ("http_port", "dicom_port", "hl7_port", "mtls_port")


@dataclass
class NodeProcess:
    data_dir: Path
    mode: str = "edge"
    extra_args: list[str] = field(default_factory=list)
    # Requests from loopback without credentials act as admin (the trusted-LAN setting), so
    # tests of other features need no sign-in; the security tests turn it off.
    trusted_loopback: bool = True
    ca_file: Path | None = None  # set when the node serves HTTPS with this (self-signed) cert
    http_port: int = 0  # 0: a free port is drawn (again if it is taken by the time we bind)
    dicom_port: int = 0
    hl7_port: int = 0
    mtls_port: int = 0  # a hub's mutual-TLS listener for its edges
    env: dict[str, str] = field(default_factory=dict)  # extra environment (e.g. NOTIFY_SOCKET)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _drawn: tuple[str, ...] = field(default=(), init=False, repr=False)

    def _trust_args(self) -> list[str]:
        if not self.trusted_loopback:
            return []
        return ["--anonymous-role", "admin", "--anonymous-network", "127.0.0.1/32"]

    def __post_init__(self) -> None:
        self._drawn = tuple(n for n in _PORTS if not getattr(self, n))
        self._draw_ports()

    def _draw_ports(self) -> None:
        taken = {getattr(self, n) for n in _PORTS if n not in self._drawn}
        for name in self._drawn:
            port = free_port()
            while port in taken:
                port = free_port()
            setattr(self, name, port)
            taken.add(port)

    def start(self, timeout: float = 30.0, attempts: int = 3) -> NodeProcess:
        """Start and wait until healthy. Drawn ports another process took between drawing
        and binding (other test runs share the machine) are drawn again, ``attempts`` times."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except RuntimeError as exc:
                if "address already in use" not in str(exc).lower() or attempt == attempts:
                    raise
                self._draw_ports()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> NodeProcess:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process owns it
        command = mekong_command(
            "serve", "--mode", self.mode, "--data", str(self.data_dir), "--bind", "127.0.0.1",
            "--http-port", str(self.http_port), "--dicom-port", str(self.dicom_port),
            "--hl7-port", str(self.hl7_port), *self._trust_args(), *self.extra_args,
        )  # fmt: skip
        if self.mode == "hub":
            command += ["--mtls-port", str(self.mtls_port)]
        self.process = subprocess.Popen(
            command, stdout=log, stderr=log, env={**mekong_env(), **self.env}
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited at start-up:\n{self.log()}")
            try:
                if self.health()["status"] == "ok":  # every component running
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node did not become healthy:\n{self.log()}")

    def health(self) -> dict:
        context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        with urllib.request.urlopen(f"{self.url}/api/health", timeout=5, context=context) as reply:
            return json.load(reply)

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
