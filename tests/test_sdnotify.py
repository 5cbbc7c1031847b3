"""sd_notify: a real node tells a real notification socket it is ready, alive and stopping;
a hung index writer withholds the watchdog pings (QOS-3.1)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mekong.shared.appliance.sdnotify import Notifier, watchdog_interval
from mekong.shared.appliance.watchdog import Watchdog
from mekong.shared.db.index import Index
from mekong.shared.db.writer import Submission
from mekong.shared.dicom.header import parse_header, record_from
from mekong.shared.storage.blobs import BlobStore
from tests.nodeproc import NodeProcess
from tools import gendata


class Manager:
    """The service manager's end: a datagram socket that records every message."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.messages: list[tuple[float, str]] = []
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind("\0" + address[1:] if address.startswith("@") else address)
        self._socket.settimeout(0.2)
        self._open = True
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while self._open:
            try:
                data = self._socket.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def wait_for(self, field: str, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, text in list(self.messages):
                if field in text.split("\n"):
                    return at
            time.sleep(0.05)
        raise AssertionError(f"no {field} within {timeout} s; got {self.messages}")

    def times(self, field: str) -> list[float]:
        return [at for at, text in list(self.messages) if field in text.split("\n")]

    def close(self) -> None:
        self._open = False
        self._thread.join()
        self._socket.close()


@pytest.fixture
def manager() -> Iterator[Manager]:
    receiver = Manager(f"@mekong-test-{uuid.uuid4().hex}")  # abstract: systemd's own form
    yield receiver
    receiver.close()


def test_node_notifies_ready_watchdog_and_stopping(tmp_path: Path, manager: Manager) -> None:
    env = {"NOTIFY_SOCKET": manager.address, "WATCHDOG_USEC": "600000"}
    node = NodeProcess(tmp_path / "data", env=env).start()
    try:
        ready_at = manager.wait_for("READY=1")
        assert node.health()["status"] == "ok"
        time.sleep(1.6)
        pings = [at for at in manager.times("WATCHDOG=1") if at >= ready_at]
        assert len(pings) >= 3, manager.messages  # every 0.3 s
        gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
        assert max(gaps) < 0.6  # each within the period systemd would allow
        assert node.stop() == 0
        manager.wait_for("STOPPING=1", timeout=2)
    finally:
        node.kill()
    statuses = [text for _, text in manager.messages if text.startswith("STATUS=")]
    assert statuses[0] == "STATUS=opening the index"
    stop = next(text for _, text in manager.messages if "STOPPING=1" in text)
    assert not any(at > manager.times("STOPPING=1")[0] for at in manager.times("WATCHDOG=1"))
    assert "STATUS=stopping: finishing in-flight work" in stop


def test_node_without_notify_socket_sends_nothing(tmp_path: Path, manager: Manager) -> None:
    node = NodeProcess(tmp_path / "data", env={"WATCHDOG_USEC": "600000"}).start()
    node.stop()
    assert manager.messages == []


def test_filesystem_socket_path(tmp_path: Path) -> None:
    receiver = Manager(str(tmp_path / "notify"))
    try:
        notifier = Notifier(receiver.address)
        assert notifier.ready("serving")
        receiver.wait_for("READY=1")
        assert "STATUS=serving" in receiver.messages[0][1].split("\n")
        notifier.close()
    finally:
        receiver.close()


def test_a_missing_manager_is_not_fatal(tmp_path: Path) -> None:
    assert not Notifier(str(tmp_path / "nobody-listens")).watchdog()
    assert not Notifier(None).watchdog()


def test_watchdog_interval_honours_watchdog_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getppid()))  # a onefile binary's launcher
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "0")
    monkeypatch.delenv("WATCHDOG_PID")
    assert watchdog_interval() is None


async def test_hung_index_writer_withholds_pings(tmp_path: Path, manager: Manager) -> None:
    release = threading.Event()
    blobs = BlobStore(tmp_path)

    def slow_sync(dirs: set[Path]) -> None:  # a commit that hangs (a dead disk, a lock)
        release.wait(30)
        blobs.sync_dirs(dirs)

    index = await Index.open(tmp_path / "index.db")
    index.start_writer(slow_sync, "keep_first")
    assert index.writer is not None
    watchdog = Watchdog(Notifier(manager.address), 0.1, lambda: index.writer.problem(0.3))
    try:
        watchdog.beat()
        manager.wait_for("WATCHDOG=1")
        data = _instance(tmp_path)
        blob = blobs.write(data)
        record = record_from(parse_header(data))
        submission = Submission(record, blob.digest, blob.size, blob.path)
        pending = ThreadPoolExecutor(1).submit(index.writer.submit_blocking, submission)
        time.sleep(0.5)
        before = len(manager.times("WATCHDOG=1"))
        watchdog.beat()
        time.sleep(0.3)
        assert any(
            text.startswith("STATUS=unhealthy: the index writer is stuck in one commit for")
            for _, text in manager.messages
        ), manager.messages
        assert len(manager.times("WATCHDOG=1")) == before and watchdog.missed == 1
        release.set()
        pending.result(10)
        watchdog.beat()
        time.sleep(0.3)
        assert len(manager.times("WATCHDOG=1")) == before + 1 and watchdog.missed == 0
    finally:
        release.set()
        await index.close()
    assert index.writer.problem(0.3) == "the index writer thread has died"


def _instance(tmp_path: Path) -> bytes:
    [path] = gendata.ct_series(tmp_path / "ct", count=1, rows=16, cols=16)
    return Path(path).read_bytes()
