"""kill -9 while four associations store: every acknowledged instance survives, intact."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pydicom

from tests.conftest import (
    assert_archive_consistent,
    ct_instances,
    dcmtk_tool,
    find_sop_uids,
    storescu,
)
from tests.nodeproc import AE_TITLE, NodeProcess, peer_env

SENDERS, PER_SENDER = 4, 60
SENDING = re.compile(r"Sending file: (.+)$")


def acknowledged(log: Path) -> list[Path]:
    """Files a `storescu -v` log shows a success response for. One association sends one file
    at a time, so each response belongs to the last "Sending file" line before it."""
    current, done = None, []
    for line in log.read_text(errors="replace").splitlines():
        if match := SENDING.search(line):
            current = Path(match.group(1))
        elif "Received Store Response (Success)" in line:
            done.append(current)
    return done


def start_sender(node: NodeProcess, folder: Path, log: Path) -> subprocess.Popen[bytes]:
    """storescu -v on every file of `folder`, its log (stderr) written to `log`."""
    command = [dcmtk_tool("storescu"), "-v", "-aec", AE_TITLE, "127.0.0.1",
               str(node.dicom_port), "+sd", str(folder)]  # fmt: skip
    with log.open("w") as stderr:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=peer_env())


def test_acknowledged_instances_survive_kill_9(node_factory, tmp_path: Path) -> None:
    files = ct_instances(tmp_path / "ct", SENDERS, PER_SENDER)
    study_uid = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    node: NodeProcess = node_factory().start()
    logs = [tmp_path / f"storescu-{n}.log" for n in range(SENDERS)]
    folders = sorted((tmp_path / "ct").iterdir())
    senders = [start_sender(node, folder, log) for folder, log in zip(folders, logs, strict=True)]
    try:
        deadline = time.monotonic() + 60
        while sum(len(acknowledged(log)) for log in logs) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        node.kill()
        for sender in senders:
            sender.wait(30)
    finally:
        for sender in senders:
            if sender.poll() is None:
                sender.kill()
                sender.wait()
    acked = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID
             for log in logs for p in acknowledged(log)}  # fmt: skip
    assert 40 <= len(acked) < len(files), "the kill did not land while storing"

    (node.data_dir / "tmp" / "leftover").write_bytes(b"an unfinished write")
    restarted = node_factory().start()  # same data folder, new ports
    stored = assert_archive_consistent(restarted.data_dir)  # orphan blobs removed at start
    assert acked <= set(stored)
    assert acked <= find_sop_uids(restarted, study_uid)

    # Everything sent again: the rest is stored.
    result = storescu(restarted, *files)
    assert result.returncode == 0, result.stderr
    assert len(assert_archive_consistent(restarted.data_dir)) == len(files)
