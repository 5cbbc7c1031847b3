"""A full disk: Out of Resources, no partial or orphan blob, and the node keeps serving."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from tests.conftest import (
    assert_archive_consistent,
    ct_instances,
    dimse_statuses,
    echo_ok,
    find_sop_uids,
    storescu,
)
from tests.nodeproc import NodeProcess
from tools import gendata

OUT_OF_RESOURCES = range(0xA700, 0xA800)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 12 MiB tmpfs as the data folder."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    mount = tmp_path / "data"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)],
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def full_node(small_disk: Path) -> Iterator[NodeProcess]:
    node = NodeProcess(small_disk).start()
    yield node
    node.stop()  # before the tmpfs is unmounted


def store_all(node: NodeProcess, files: list[Path]) -> list[int]:
    statuses = dimse_statuses(storescu(node, *files).stderr)
    assert len(statuses) == len(files)
    assert set(statuses) <= {0x0000, *OUT_OF_RESOURCES}, [hex(s) for s in statuses]
    return statuses


def test_store_until_the_disk_is_full(full_node: NodeProcess, tmp_path: Path) -> None:
    files = ct_instances(tmp_path / "ct", series=1, count=120)  # ~16 MB of 256x256 CT
    statuses = store_all(full_node, files)
    assert statuses[0] == 0x0000 and statuses[-1] in OUT_OF_RESOURCES
    stored = _stored(files, statuses)

    # Tiny instances: the first may still fit in the space the refused large one left; then
    # the disk fills up again and it is the index commit that fails. Whatever succeeded must
    # be complete.
    tiny = gendata.ct_series(tmp_path / "tiny", 30, 16, 16, patient_id="TINY01")
    tiny_statuses = store_all(full_node, tiny)
    assert tiny_statuses[-1] in OUT_OF_RESOURCES
    tiny_stored = _stored(tiny, tiny_statuses)

    assert set(assert_archive_consistent(full_node.data_dir)) == stored | tiny_stored
    assert echo_ok(full_node)
    study_uid = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    assert find_sop_uids(full_node, study_uid) == stored
    assert full_node.health()["index"]["instances"] == len(stored | tiny_stored)


def _stored(files: list[Path], statuses: list[int]) -> set[str]:
    return {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID
            for f, status in zip(files, statuses, strict=True) if status == 0}  # fmt: skip
