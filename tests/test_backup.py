"""Backup, restore and verify (QOS-5): a backup taken while a modality stores restores into a
fresh data directory whose every indexed blob is present and intact, and a node runs on it."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pydicom
import pytest

from mekong.shared.appliance import backup, restore
from mekong.shared.appliance.scheduled import seconds_until
from tests.conftest import (
    assert_archive_consistent,
    config_args,
    ct_instances,
    index_digests,
    mekong_cli,
    storescu,
)
from tests.nodeproc import NodeProcess, mekong_command, mekong_env
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


@pytest.fixture(scope="module")
def stopped_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped node's data directory with 80 CT instances (2 series, ~42 MB), made once."""
    root = tmp_path_factory.mktemp("archive")
    node = NodeProcess(root / "data").start()
    try:
        files = ct_instances(root / "ct", series=2, count=40, size=512)
        assert storescu(node, *files).returncode == 0
    finally:
        node.stop()
    return node.data_dir


@pytest.fixture
def archive(stopped_archive: Path, tmp_path: Path) -> Path:
    """This test's own copy of the stopped archive."""
    return Path(shutil.copytree(stopped_archive, tmp_path / "live"))


def test_node_runs_on_a_restored_backup(archive: Path, tmp_path: Path) -> None:
    assert _backup(archive, tmp_path / "nas").returncode == 0
    restored = tmp_path / "restored"
    restore.restore(tmp_path / "nas", restored)
    again = NodeProcess(restored).start()
    try:
        assert again.health()["index"]["instances"] == 80
    finally:
        again.stop()


def test_verify_names_missing_and_damaged_blobs(archive: Path) -> None:
    blobs = sorted((archive / "blobs").rglob("*/*/*"))
    blobs[0].unlink()
    damaged = bytearray(blobs[1].read_bytes())
    damaged[-1] ^= 0x01
    blobs[1].write_bytes(bytes(damaged))
    result = mekong_cli("verify", "--data", str(archive))
    assert result.returncode == 1
    assert f"1 missing: {blobs[0].name}" in result.stdout
    assert f"1 damaged: {blobs[1].name}" in result.stdout


def test_backup_refuses_when_the_live_store_lost_a_blob(archive: Path, tmp_path: Path) -> None:
    next((archive / "blobs").rglob("*/*/*")).unlink()
    result = _backup(archive, tmp_path / "nas")
    assert result.returncode == 1 and "run 'mekong verify'" in result.stderr
    assert backup.snapshots(tmp_path / "nas") == []  # no snapshot that cannot be restored


def test_restore_refuses_a_damaged_backup_and_the_node_refuses_half_a_restore(
    archive: Path, tmp_path: Path
) -> None:
    assert _backup(archive, tmp_path / "nas").returncode == 0
    pooled = next((tmp_path / "nas" / "blobs").rglob("*/*/*"))
    pooled.write_bytes(pooled.read_bytes()[:-1] + b"\x00")
    with pytest.raises(restore.RestoreError, match="damaged"):
        restore.restore(tmp_path / "nas", tmp_path / "restored")
    with pytest.raises(RuntimeError, match="unfinished 'mekong restore'"):
        NodeProcess(tmp_path / "restored").start(timeout=20)
    with pytest.raises(restore.RestoreError, match="not empty"):
        restore.restore(tmp_path / "nas", archive)


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


def test_the_node_backs_up_on_request_and_reports_it_in_health(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(f'[backup]\nto = "{tmp_path / "nas"}"\nat = "03:30"\nkeep = 2\n')
    node = NodeProcess(tmp_path / "live", extra_args=["--config", str(config)]).start()
    try:
        assert storescu(node, *ct_instances(tmp_path / "ct", series=1, count=3)).returncode == 0
        for _ in range(3):
            reply = _post(f"{node.url}/api/admin/backup")
        health = node.health()["backup"]
    finally:
        node.stop()
    assert reply["blobs"] == 3 and reply["counts"]["instance"] == 3
    assert health["last"]["ok"] and health["last"]["snapshot"] == reply["snapshot"]
    assert health["next_at"] > 0
    kept = backup.snapshots(tmp_path / "nas")
    assert [s.name for s in kept][-1] == reply["snapshot"] and len(kept) == 2
    assert (kept[-1] / "config.toml").read_text() == config.read_text()


def test_backup_now_without_a_folder_says_what_to_set(node: NodeProcess) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        _post(f"{node.url}/api/admin/backup")
    assert refused.value.code == 409 and "[backup] to" in json.load(refused.value)["error"]


@pytest.mark.parametrize(
    ("at", "now", "expected"),
    [("02:00", "2026-11-26 01:00", 3600), ("02:00", "2026-11-26 02:00", 86400),
     ("00:30", "2026-11-26 23:45", 2700)],
)  # fmt: skip
def test_the_next_scheduled_backup(at: str, now: str, expected: float) -> None:
    assert seconds_until(at, datetime.fromisoformat(now)) == expected


def test_a_bad_backup_time_is_refused_with_the_key_named(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('[backup]\nto = "/mnt/nas"\nat = "25:00"\n')
    result = mekong_cli("serve", "--data", str(tmp_path / "d"), "--config", str(config))
    assert result.returncode == 2 and "backup.at must be HH:MM" in result.stderr


def _post(url: str) -> dict:
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=120) as reply:
        return json.load(reply)


def test_a_backup_killed_midway_leaves_nothing_restorable_and_the_next_one_completes(
    archive: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "nas"
    running = subprocess.Popen(
        mekong_command("backup", "--data", str(archive), "--to", str(dest)), env=mekong_env()
    )
    while not list((dest / "snapshots").glob(".partial-*/index.db")) and running.poll() is None:
        time.sleep(0.005)
    running.kill()
    running.wait()
    assert backup.snapshots(dest) == []
    with pytest.raises(restore.RestoreError, match="no complete backup"):
        restore.restore(dest, tmp_path / "restored")
    backup.take_backup(archive, dest)
    assert not list((dest / "snapshots").glob(".partial-*"))
    restore.restore(dest, tmp_path / "restored-2")
    assert mekong_cli("verify", "--data", str(tmp_path / "restored-2")).returncode == 0
