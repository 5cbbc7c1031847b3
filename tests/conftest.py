"""Shared fixtures: generated DICOM data and running nodes (real processes, real sockets)."""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pydicom
import pytest

from tests.nodeproc import AE_TITLE, NodeProcess, mekong_command, mekong_env, peer_env
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


# --- helpers for the robustness tests (bad input, crash safety, disk full) ---------------------

DIMSE_STATUS = re.compile(r"DIMSE Status\s*:\s*0x([0-9a-fA-F]{4})")
STORE_FAILURES = (range(0xA700, 0xA800), range(0xA900, 0xAA00), range(0xC000, 0xD000))


def dcmtk_tool(name: str) -> str:
    """Absolute path of a DCMTK tool (for Popen); never the venv's pynetdicom script."""
    tool = shutil.which(name, path="/usr/bin:/usr/local/bin")
    if tool is None:
        pytest.fail(f"{name} not installed: run `make test` (it installs dcmtk)")
    return tool


def dimse_statuses(output: str) -> list[int]:
    """Status of every DIMSE response a DCMTK tool logged with -d, in order."""
    return [int(code, 16) for code in DIMSE_STATUS.findall(output)]


def is_store_failure(code: int) -> bool:
    return any(code in codes for codes in STORE_FAILURES)


def storescu(
    node: NodeProcess, *files: Path, aet: str = "STORESCU", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """storescu -d (statuses readable with dimse_statuses), going on after a failed store."""
    return dcmtk(
        "storescu", "-d", "-nh", "-aet", aet, "-aec", AE_TITLE, "127.0.0.1",
        str(node.dicom_port), *map(str, files), timeout=timeout,
    )  # fmt: skip


def echo_ok(node: NodeProcess, aet: str = "ECHOSCU") -> bool:
    result = dcmtk("echoscu", "-aet", aet, "-aec", AE_TITLE, "127.0.0.1", str(node.dicom_port))
    return result.returncode == 0


def find_sop_uids(node: NodeProcess, study_uid: str) -> set[str]:
    """SOP Instance UIDs of a study by C-FIND at IMAGE level (responses read back with -X)."""
    out = node.data_dir.parent / f"find-{time.monotonic_ns()}"
    out.mkdir()
    result = dcmtk(
        "findscu", "-S", "-X", "-od", str(out), "-aec", AE_TITLE, "127.0.0.1",
        str(node.dicom_port), "-k", "QueryRetrieveLevel=IMAGE",
        "-k", f"StudyInstanceUID={study_uid}", "-k", "SOPInstanceUID",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {str(pydicom.dcmread(p).SOPInstanceUID) for p in out.glob("rsp*.dcm")}


def config_args(path: Path, **dicom: str | int) -> list[str]:
    """Write a TOML file with these [dicom] keys; returns the serve arguments that use it."""
    lines = "".join(
        f"{key} = {value}\n" if isinstance(value, int) else f'{key} = "{value}"\n'
        for key, value in dicom.items()
    )
    path.write_text(f"[dicom]\n{lines}")
    return ["--config", str(path)]


def mekong_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mekong_command(*args), capture_output=True, text=True, env=mekong_env(), timeout=60,
    )  # fmt: skip


def ct_instances(out: Path, series: int, count: int, size: int = 256) -> list[Path]:
    """`series` CT series of `count` slices (size x size) in one study, one folder each."""
    study = gendata.uid(0, "robustness-study")
    return [
        path
        for n in range(1, series + 1)
        for path in gendata.ct_series(out / f"s{n}", count, size, size, patient_id="ROBUST01",
                                      study_uid=study, series_number=n)
    ]  # fmt: skip


def blob_files(data_dir: Path) -> dict[str, Path]:
    """Every file under DATA/blobs, by name."""
    return {p.name: p for p in (data_dir / "blobs").rglob("*") if p.is_file()}


def index_digests(data_dir: Path) -> dict[str, str]:
    """SOP Instance UID -> digest, read from the index with sqlite3 (read-only)."""
    with closing(sqlite3.connect(f"file:{data_dir / 'index.db'}?mode=ro", uri=True)) as db:
        return dict(db.execute("SELECT sop_uid, digest FROM instance").fetchall())


def assert_archive_consistent(data_dir: Path, orphans_allowed: bool = False) -> dict[str, str]:
    """Every row's blob exists and hashes to its digest; counters equal the real row counts;
    tmp/ is empty; unless ``orphans_allowed``, every blob has a row. Returns index_digests."""
    digests = index_digests(data_dir)
    blobs = blob_files(data_dir)
    for sop_uid, digest in digests.items():
        assert digest in blobs, f"instance {sop_uid} has no blob"
        assert hashlib.sha256(blobs[digest].read_bytes()).hexdigest() == digest, sop_uid
    for name, path in blobs.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == name, f"damaged blob {path}"
    if not orphans_allowed:
        assert set(blobs) == set(digests.values()), "blobs without an index row"
    assert not list((data_dir / "tmp").iterdir()), "leftovers in tmp/"
    with closing(sqlite3.connect(f"file:{data_dir / 'index.db'}?mode=ro", uri=True)) as db:
        bad_series = db.execute(
            "SELECT series_uid FROM series s WHERE num_instances != "
            "(SELECT count(*) FROM instance i WHERE i.series_fk = s.id)"
        ).fetchall()
        bad_studies = db.execute(
            "SELECT study_uid FROM study st WHERE num_instances != (SELECT count(*) FROM "
            "instance i JOIN series s ON i.series_fk = s.id WHERE s.study_fk = st.id) "
            "OR num_series != (SELECT count(*) FROM series s WHERE s.study_fk = st.id)"
        ).fetchall()
    assert not bad_series and not bad_studies, (bad_series, bad_studies)
    return digests
