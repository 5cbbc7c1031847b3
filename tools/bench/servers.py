"""The two servers under test (Mekong, Orthanc) and the CPU they use."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from tests.nodeproc import NodeProcess, free_port, peer_env
from tools.bench.synthetic import BenchError

ORTHANC = "/usr/sbin/Orthanc"
STORE_AE = "STORESCU"  # storescu's default calling AE title
FIND_AE = "BENCHSCU"
LOOPBACK = "127.0.0.1"


class Server(Protocol):
    name: str
    aet: str

    @property
    def port(self) -> int: ...
    @property
    def pid(self) -> int: ...
    @property
    def url(self) -> str: ...
    def instances(self) -> int: ...
    def stop(self) -> None: ...


class Mekong:
    name = "Mekong"
    aet = "MEKONG"

    def __init__(
        self, data_dir: Path, config: Path | None = None, trusted_loopback: bool = True
    ) -> None:
        """``trusted_loopback``: requests from 127.0.0.1 without credentials act as admin."""
        extra = ["--config", str(config.resolve())] if config else []
        self.node = NodeProcess(data_dir, extra_args=extra, trusted_loopback=trusted_loopback)

    def start(self) -> Mekong:
        self.node.start(timeout=60)
        return self

    @property
    def url(self) -> str:
        """Base URL of its HTTP listener (DICOMweb under ``/dicom-web/``)."""
        return self.node.url

    @property
    def port(self) -> int:
        return self.node.dicom_port

    @property
    def pid(self) -> int:
        assert self.node.process is not None
        return self.node.process.pid

    def instances(self) -> int:
        return int(self.node.health()["index"]["instances"])

    def credentials(self, kind: str, role: str = "radiologist") -> dict[str, str]:
        """Request headers that authenticate a client: ``session``, the cookie of a user signed
        in through ``/api/auth/login`` (what OHIF sends from a browser); ``token``, an API
        token; ``none``, nothing (for the trusted-loopback role)."""
        if kind == "none":
            return {}
        cli = [sys.executable, "-m", "mekong.shared.cli"]
        args = ["bench", "--role", role, "--data", str(self.node.data_dir)]
        command = (
            [*cli, "token", "create", *args] if kind == "token" else [*cli, "user", "add", *args]
        )
        secret = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
        if kind == "token":
            return {"Authorization": f"Bearer {secret[-1]}"}
        login = {"username": "bench", "password": secret[-1]}
        cookie, me = self._post("/api/auth/login", login, {})
        headers = {"Cookie": cookie.split(";")[0]}
        change = {"current_password": secret[-1], "new_password": "Xq7#vLm2!pRt"}
        self._post("/api/auth/password", change, {**headers, "X-CSRF-Token": me["csrf"]})
        return headers

    def _post(self, path: str, body: dict, headers: dict[str, str]) -> tuple[str, dict]:
        headers = {"Content-Type": "application/json", **headers}
        request = urllib.request.Request(self.url + path, json.dumps(body).encode(), headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.headers.get("Set-Cookie", ""), json.load(response)
        except urllib.error.HTTPError as exc:
            raise BenchError(f"Mekong: POST {path}: {exc.code} {exc.read()[:300]!r}") from None

    def stop(self) -> None:
        self.node.stop()


class Orthanc:
    name = "Orthanc"
    aet = "ORTHANC"

    def __init__(
        self,
        root: Path,
        plugins: Sequence[str] = (),
        settings: dict[str, object] | None = None,
        user: tuple[str, str] | None = None,
    ) -> None:
        """``plugins``: shared libraries to load; ``settings``: configuration entries added to
        (or replacing) the benchmark's own; ``user``: HTTP Basic authentication on, with this
        one (name, password)."""
        self.root = root
        self.plugins = list(plugins)
        self.settings = dict(settings or {})
        self.credentials: dict[str, str] = {}
        if user:
            self.settings |= {"AuthenticationEnabled": True, "RegisteredUsers": dict([user])}
            basic = base64.b64encode(":".join(user).encode()).decode()
            self.credentials = {"Authorization": f"Basic {basic}"}
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> dict[str, object]:
        return {
            "Name": "mekong-bench",
            "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "index"),
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "DicomCheckCalledAet": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": self.plugins,
            "SyncStorageArea": True,  # Orthanc's default since 1.7.4, stated explicitly
            # Orthanc 1.10 cannot bind to one address, so only the benchmark's two clients,
            # from loopback, may talk to it:
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowFind": False,
            "DicomCheckModalityHost": True,
            "DicomModalities": {
                "storescu": [STORE_AE, LOOPBACK, 104],
                "bench": [FIND_AE, LOOPBACK, 104],
            },
            **self.settings,
        }

    def start(self, timeout: float = 60.0) -> Orthanc:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "orthanc.json"
        config.write_text(json.dumps(self.config(), indent=2))
        with open(self.root / "orthanc.log", "ab") as log:  # Popen keeps its own copy
            self.process = subprocess.Popen(
                [ORTHANC, str(config)], stdout=log, stderr=log, env=peer_env()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"Orthanc exited at start-up, see {self.root / 'orthanc.log'}")
            try:
                self._get("/system")
                return self
            except OSError:
                time.sleep(0.1)
        raise BenchError("Orthanc did not answer on HTTP")

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def _get(self, path: str) -> dict:
        request = urllib.request.Request(f"{self.url}{path}", headers=self.credentials)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    @property
    def port(self) -> int:
        return self.dicom_port

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def instances(self) -> int:
        return int(self._get("/statistics")["CountInstances"])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its living descendants (all threads)."""
    table: dict[int, tuple[int, int]] = {}  # pid → (parent, ticks)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            table[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    family, grew = {pid}, True
    while grew:
        grew = False
        for child, (parent, _) in table.items():
            if parent in family and child not in family:
                family.add(child)
                grew = True
    ticks = sum(table[p][1] for p in family if p in table)
    return ticks / os.sysconf("SC_CLK_TCK")


def system_busy_seconds() -> float:
    """CPU time the whole machine spent busy (user, nice, system, irq, softirq) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This process and its waited-for children (storescu)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def kernel_threads_cpu_seconds() -> float:
    """Kernel threads (I/O completion, writeback: mostly the servers' own fsync work)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[6]) & 0x00200000:  # PF_KTHREAD
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU of the servers, and CPU used by anything else on the machine (a disturbed run shows)."""

    def __init__(self, *servers: Server) -> None:
        self.servers = servers
        self.start = self._now()

    def _now(self) -> tuple[float, float, float, float]:
        servers = sum(cpu_seconds(s.pid) for s in self.servers)
        return servers, own_cpu_seconds(), kernel_threads_cpu_seconds(), system_busy_seconds()

    def stop(self) -> tuple[float, float]:
        """(CPU seconds of the servers, of other user processes on the machine)."""
        deltas = [now - then for now, then in zip(self._now(), self.start, strict=True)]
        servers, own, kernel, busy = deltas
        return servers, max(0.0, busy - servers - own - kernel)
