"""Backup, restore and verify (QOS-5): a backup taken while a modality stores restores into a
fresh data directory whose every indexed blob is present and intact, and a node runs on it."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pydicom
import pytest

from mekong.shared.appliance import backup, restore
from tests.conftest import (
    assert_archive_consistent,
    config_args,
    ct_instances,
    index_digests,
    mekong_cli,
    storescu,
)
from tests.nodeproc import NodeProcess
from tools import gendata


def _ingest_in_background(node: NodeProcess, batches: list[list[Path]]) -> threading.Thread:
    def run() -> None:
        for batch in batches:
            assert storescu(node, *batch).returncode == 0

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _backup(data: Path, dest: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return mekong_cli("backup", "--data", str(data), "--to", str(dest), *extra)


def test_backup_during_ingest_restores_and_verifies(tmp_path: Path) -> None:
    files = ct_instances(tmp_path / "ct", series=4, count=30)
    node = NodeProcess(tmp_path / "live").start()
    try:
        ingest = _ingest_in_background(node, [files[i : i + 20] for i in range(0, 120, 20)])
        dest, config = tmp_path / "nas", tmp_path / "mekong.toml"
        config.write_text('[dicom]\nae_title = "MEKONG"\n')
        first = _backup(node.data_dir, dest, "--config", str(config))
        ingest.join()
        second = _backup(node.data_dir, dest)
    finally:
        node.stop()
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    taken = backup.snapshots(dest)
    assert len(taken) == 2
    last = json.loads((taken[-1] / "manifest.json").read_text())
    assert last["counts"]["instance"] == 120 and last["blobs"] == 120
    assert "new" in second.stdout  # the second copies only what the first did not have

    restored = tmp_path / "restored"
    done = mekong_cli(
        "restore", "--from", str(dest), "--snapshot", taken[0].name, "--data", str(restored),
        "--config-out", str(tmp_path / "restored.toml"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "restored.toml").read_text() == config.read_text()
    verified = mekong_cli("verify", "--data", str(restored))
    assert verified.returncode == 0 and verified.stdout.strip().endswith("OK"), verified.stdout
    first_manifest = json.loads((taken[0] / "manifest.json").read_text())
    live = index_digests(node.data_dir)
    (restored / "tmp").mkdir()  # a node makes its work folders at start
    restored_digests = assert_archive_consistent(restored)
    assert len(restored_digests) == first_manifest["counts"]["instance"]
    assert restored_digests.items() <= live.items()  # the same instances with the same bytes


def test_node_runs_on_a_restored_backup(tmp_path: Path) -> None:
    files = ct_instances(tmp_path / "ct", series=1, count=10)
    node = NodeProcess(tmp_path / "live").start()
    try:
        assert storescu(node, *files).returncode == 0
        assert _backup(node.data_dir, tmp_path / "nas").returncode == 0
    finally:
        node.stop()
    restored = tmp_path / "restored"
    restore.restore(tmp_path / "nas", restored)
    again = NodeProcess(restored).start()
    try:
        assert again.health()["index"]["instances"] == 10
    finally:
        again.stop()


def test_verify_names_missing_and_damaged_blobs(tmp_path: Path) -> None:
    files = ct_instances(tmp_path / "ct", series=1, count=4)
    node = NodeProcess(tmp_path / "live").start()
    try:
        assert storescu(node, *files).returncode == 0
    finally:
        node.stop()
    blobs = sorted((node.data_dir / "blobs").rglob("*/*/*"))
    blobs[0].unlink()
    damaged = bytearray(blobs[1].read_bytes())
    damaged[-1] ^= 0x01
    blobs[1].write_bytes(bytes(damaged))
    result = mekong_cli("verify", "--data", str(node.data_dir))
    assert result.returncode == 1
    assert f"1 missing: {blobs[0].name}" in result.stdout
    assert f"1 damaged: {blobs[1].name}" in result.stdout


def test_backup_refuses_when_the_live_store_lost_a_blob(tmp_path: Path) -> None:
    files = ct_instances(tmp_path / "ct", series=1, count=3)
    node = NodeProcess(tmp_path / "live").start()
    try:
        assert storescu(node, *files).returncode == 0
    finally:
        node.stop()
    next((node.data_dir / "blobs").rglob("*/*/*")).unlink()
    result = _backup(node.data_dir, tmp_path / "nas")
    assert result.returncode == 1 and "run 'mekong verify'" in result.stderr
    assert backup.snapshots(tmp_path / "nas") == []  # no snapshot that cannot be restored


def test_restore_refuses_a_damaged_backup_and_the_node_refuses_half_a_restore(
    tmp_path: Path,
) -> None:
    files = ct_instances(tmp_path / "ct", series=1, count=3)
    node = NodeProcess(tmp_path / "live").start()
    try:
        assert storescu(node, *files).returncode == 0
        assert _backup(node.data_dir, tmp_path / "nas").returncode == 0
    finally:
        node.stop()
    pooled = next((tmp_path / "nas" / "blobs").rglob("*/*/*"))
    pooled.write_bytes(pooled.read_bytes()[:-1] + b"\x00")
    with pytest.raises(restore.RestoreError, match="damaged"):
        restore.restore(tmp_path / "nas", tmp_path / "restored")
    with pytest.raises(RuntimeError, match="unfinished 'mekong restore'"):
        NodeProcess(tmp_path / "restored").start(timeout=20)
    with pytest.raises(restore.RestoreError, match="not empty"):
        restore.restore(tmp_path / "nas", node.data_dir)


def test_keeping_the_newest_snapshots_frees_blobs_only_they_needed(tmp_path: Path) -> None:
    node = NodeProcess(
        tmp_path / "live", extra_args=config_args(tmp_path / "c.toml", duplicate_policy="replace")
    ).start()
    dest = tmp_path / "nas"
    try:
        originals = ct_instances(tmp_path / "a", series=1, count=2)
        assert storescu(node, *originals).returncode == 0
        backup.take_backup(node.data_dir, dest)
        assert storescu(node, *_changed_copies(originals, tmp_path / "b")).returncode == 0
        backup.take_backup(node.data_dir, dest)  # the replaced originals left the data dir
        third = gendata.cr_image(tmp_path / "cr")
        assert storescu(node, *third).returncode == 0
        backup.take_backup(node.data_dir, dest, keep=2)
    finally:
        node.stop()
    assert len(backup.snapshots(dest)) == 2
    pool = {p.name for p in (dest / "blobs").rglob("*/*/*")}
    assert pool == set(index_digests(node.data_dir).values())  # the originals' blobs are gone


def _changed_copies(files: list[Path], out: Path) -> list[Path]:
    """The same SOP instances with other content (a modality re-sending a corrected image)."""
    out.mkdir()
    changed = []
    for path in files:
        dataset = pydicom.dcmread(path)
        dataset.ImageComments = "corrected"
        dataset.save_as(out / path.name)
        changed.append(out / path.name)
    return changed
