"""Backup benchmark (QOS-5): how long a consistent online backup, a restore and a verify take,
against the floor of a plain file copy of the same data directory.

    .venv/bin/python -m tools.bench.backup [--instances N] [--out FILE]

1. Writes one CT study of N 512x512 16-bit slices (``tools.bench.synthetic``) and stores it in a
   Mekong edge (``tests.nodeproc.NodeProcess``) with DCMTK storescu.
2. With the node running: ``mekong backup`` (full), ``mekong backup`` again (nothing new:
   the incremental cost), ``mekong backup`` while storescu stores a second set of N/4, and
   ``mekong verify`` of the live data directory.
3. The node stopped: ``cp -a`` of the data directory + ``sync`` (what a stop-and-copy backup
   costs; Orthanc documents no online backup of its own, so this is the baseline), then
   ``mekong restore`` into an empty directory and ``mekong verify`` of the result.
4. Prints a Markdown table (seconds, MB/s, ratio to the plain copy) and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.nodeproc import NodeProcess, peer_env
from tools.bench.dimse import MB, STORESCU, facts, settle
from tools.bench.synthetic import files_in, write_ct_series

MEKONG = [sys.executable, "-m", "mekong.shared.cli"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("tools/bench/results/backup.md"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mekong-bench-backup-") as tmp:
        rows = run(Path(tmp), args.instances)
    table = report(rows, args.instances, argv or sys.argv[1:])
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    return 0


def run(root: Path, instances: int) -> list[tuple[str, float, int]]:
    first, second = root / "set1", root / "set2"
    write_ct_series(first, instances, 1, 1)
    write_ct_series(second, max(1, instances // 4), 2, 2)
    node = NodeProcess(root / "data").start()
    rows: list[tuple[str, float, int]] = []
    try:
        _store(node, first)
        size = _tree_bytes(node.data_dir)
        nas = root / "nas"
        rows.append(("backup, full (node running)", _timed(_cli("backup", node, nas)), size))
        rows.append(("backup, nothing new", _timed(_cli("backup", node, nas)), 0))
        storing = subprocess.Popen(_storescu(node, second), env=peer_env())
        rows.append(("backup during a C-STORE of N/4", _timed(_cli("backup", node, nas)), 0))
        storing.wait()
        rows.append(("verify (live)", _timed(_cli("verify", node)), _tree_bytes(node.data_dir)))
    finally:
        node.stop()
    size = _tree_bytes(node.data_dir)
    rows.append(("cp -a + sync (stopped): the floor", _timed(_copy(node.data_dir, root)), size))
    restored = root / "restored"
    restore = [*MEKONG, "restore", "--from", str(root / "nas"), "--data", str(restored)]
    rows.append(("restore into an empty directory", _timed(_command(restore)), size))
    verify = [*MEKONG, "verify", "--data", str(restored)]
    rows.append(("verify (restored)", _timed(_command(verify)), size))
    return rows


def _store(node: NodeProcess, folder: Path) -> None:
    subprocess.run(_storescu(node, folder), env=peer_env(), check=True, capture_output=True)


def _storescu(node: NodeProcess, folder: Path) -> list[str]:
    return [STORESCU, "-nh", "+sd", "-aec", "MEKONG", "127.0.0.1", str(node.dicom_port),
            str(folder)]  # fmt: skip


def _cli(command: str, node: NodeProcess, dest: Path | None = None) -> Callable[[], None]:
    argv = [*MEKONG, command, "--data", str(node.data_dir)]
    return _command(argv + (["--to", str(dest)] if dest else []))


def _command(argv: list[str]) -> Callable[[], None]:
    return lambda: subprocess.run(argv, env=peer_env(), check=True, capture_output=True)


def _copy(data: Path, root: Path) -> Callable[[], None]:
    def copy() -> None:
        shutil.copytree(data, root / "plain-copy", symlinks=True)
        os.sync()

    return copy


def _timed(work: Callable[[], None]) -> float:
    settle()
    started = time.monotonic()
    work()
    return time.monotonic() - started


def _tree_bytes(folder: Path) -> int:
    return files_in([folder])[1]


def report(rows: list[tuple[str, float, int]], instances: int, argv: list[str]) -> str:
    floor = next(seconds for name, seconds, _ in rows if name.startswith("cp -a"))
    lines = [
        f"Backup benchmark: {instances} CT instances; `python -m tools.bench.backup "
        f"{' '.join(argv)}`",
        "",
        "| step | seconds | MB/s | ÷ plain copy |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds, size in rows:
        rate = f"{size / MB / seconds:.0f}" if size else "–"
        lines.append(f"| {name} | {seconds:.2f} | {rate} | {seconds / floor:.2f} |")
    machine = facts([])
    lines += ["", "; ".join(f"{k}: {v}" for k, v in machine.items() if k != "command")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
