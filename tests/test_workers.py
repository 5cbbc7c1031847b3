"""Several DICOM receiving processes on one port: all stores land, and they die with the node."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.conftest import dcmtk
from tests.nodeproc import AE_TITLE, NodeProcess, peer_env
from tools import gendata


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                found.append(int(entry.name))
    return found


def test_two_receivers_share_the_port_and_die_with_the_node(node_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "node.toml"
    config.write_text("[dicom]\nworkers = 2\n")
    node: NodeProcess = node_factory(extra_args=["--config", str(config)]).start()
    assert node.health()["components"]["dimse-workers"] == "running"
    assert node.process is not None
    workers = [p for p in _children(node.process.pid) if _spawned(_cmdline(p))]
    assert len(workers) == 1

    folders = [gendata.ct_series(tmp_path / f"s{i}", count=15, rows=128, cols=128,
                                 patient_id=f"W{i}", seed=i) for i in range(4)]  # fmt: skip
    senders = [
        subprocess.Popen(["/usr/bin/storescu", "-aec", AE_TITLE, "127.0.0.1",
                          str(node.dicom_port), *map(str, files)], env=peer_env())
        for files in folders
    ]  # fmt: skip
    assert [s.wait(120) for s in senders] == [0, 0, 0, 0]
    assert node.health()["index"]["instances"] == 60
    assert dcmtk("echoscu", "-aec", AE_TITLE, "127.0.0.1", str(node.dicom_port)).returncode == 0

    node.kill()
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "a DICOM worker outlived the node"
        time.sleep(0.1)


def _spawned(cmdline: bytes) -> bool:
    """A multiprocessing ``spawn`` child: ``python -c '...spawn_main...'`` from a venv, or
    ``<binary> --multiprocessing-fork`` from the Nuitka binary (not its resource tracker)."""
    return b"spawn_main" in cmdline or b"--multiprocessing-fork" in cmdline


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_a_second_node_on_the_same_dicom_port_fails_to_start(
    node: NodeProcess, tmp_path: Path
) -> None:
    second = NodeProcess(tmp_path / "second", dicom_port=node.dicom_port)
    try:
        second.start(timeout=20)
    except RuntimeError as exc:
        assert "cannot start" in str(exc)
    else:
        raise AssertionError("a second node shared the DICOM port")
    finally:
        second.stop()
