"""Shared fixtures: generated DICOM data and running nodes (real processes, real sockets)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nodeproc import NodeProcess, peer_env
from tools import gendata


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One of each generated kind, made once per test session."""
    out = tmp_path_factory.mktemp("gendata")
    gendata.ct_series(out / "ct", count=5)
    gendata.cr_image(out / "cr")
    gendata.us_multiframe(out / "us")
    gendata.j2k_instance(out / "j2k")
    gendata.jpegls_instance(out / "jls")
    gendata.vietnamese_patient(out / "vn")
    gendata.without_sop_instance_uid(out / "bad")
    return out


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    proc = NodeProcess(tmp_path / "data").start()
    yield proc
    proc.stop()


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator:
    started: list[NodeProcess] = []

    def make(name: str = "data", **kwargs) -> NodeProcess:
        proc = NodeProcess(tmp_path / name, **kwargs)
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.stop()


def dcmtk(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK tool with TCP_NODELAY=1; output captured as text.

    Looked up in the system folders only: pynetdicom's venv scripts share DCMTK's names.
    """
    tool = shutil.which(args[0], path="/usr/bin:/usr/local/bin")
    if tool is None:
        pytest.fail(f"{args[0]} not installed: run `make test` (it installs dcmtk)")
    return subprocess.run(
        [tool, *args[1:]], env=peer_env(), capture_output=True, text=True, timeout=timeout
    )
