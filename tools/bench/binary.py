"""The single binary against the venv: size, time to the first HTTP answer, memory.

    .venv/bin/python -m tools.bench.binary [--starts 5] [--out FILE]

For the venv and each build in dist/ (``make binary``: dist/mekong; ``make binary-dist``:
dist/mekong.dist/mekong.bin): the size on disk (the file, or the folder), the time from exec to the
first HTTP 200 on ``/api/health`` (median of ``--starts`` starts of an edge node, each on a
fresh data dir), and the memory of the node's processes once every component is running (the
onefile launcher, the node, its DICOM worker), as RSS, PSS and anonymous PSS (memory not
backed by a file) summed over them. The binaries
run in a clean environment with a temporary HOME, so the onefile's first start unpacks into an
empty cache (reported on its own) and the others reuse it. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.nodeproc import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
SETTLE = 2.0  # seconds after "all running" before memory is read (workers finish importing)


@dataclass
class Variant:
    name: str
    command: list[str]
    size_path: Path | None  # None: the venv, whose folder also holds the test and build tools
    clean_env: bool = True


@dataclass
class Start:
    first_200: float
    rss: int
    pss: int
    anon: int  # PSS of anonymous memory: what the processes really own (no mapped files)


def variants() -> list[Variant]:
    found = [Variant("venv", [str(VENV_PYTHON), "-m", "mekong.shared.cli"], None, False)]
    folder = ROOT / "dist" / "mekong.dist"
    if (folder / "mekong.bin").is_file():
        found.append(Variant("standalone folder", [str(folder / "mekong.bin")], folder))
    onefile = ROOT / "dist" / "mekong"
    if onefile.is_file():
        found.append(Variant("onefile", [str(onefile)], onefile))
    return found


def size_of(path: Path | None) -> str:
    if path is None:
        return "—"
    if path.is_file():
        size = path.stat().st_size
    else:
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return f"{size / 1e6:.1f} MB"


def environment(variant: Variant, home: Path) -> dict[str, str]:
    if not variant.clean_env:
        return {**os.environ, "TCP_NODELAY": "1"}
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "TCP_NODELAY": "1"}


def get_health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as reply:
            return json.load(reply) if reply.status == 200 else None
    except OSError:
        return None


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc/*/stat parent ids)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found = [pid]
    for candidate in found:
        found += [child for child, parent in parents.items() if parent == candidate]
    return found


def memory(pid: int) -> tuple[int, int, int]:
    """RSS, PSS and anonymous PSS in bytes, summed over the process tree."""
    rss = pss = anon = 0
    for process in descendants(pid):
        try:
            rollup = Path(f"/proc/{process}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        values = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in rollup[1:]}
        rss += values.get("Rss", 0)
        pss += values.get("Pss", 0)
        anon += values.get("Pss_Anon", 0)
    return rss, pss, anon


def start_once(variant: Variant, home: Path) -> Start:
    data = Path(tempfile.mkdtemp(prefix="bench-binary-"))
    port = free_port()
    command = [
        *variant.command, "serve", "--mode", "edge", "--data", str(data / "data"),
        "--bind", "127.0.0.1", "--http-port", str(port), "--dicom-port", str(free_port()),
        "--hl7-port", str(free_port()),
    ]  # fmt: skip
    log = data / "node.log"
    began = time.monotonic()
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=environment(variant, home), stdout=output, stderr=output
        )
    try:
        first_200 = wait_for(process, port, log, lambda health: True) - began
        wait_for(process, port, log, lambda health: health["status"] == "ok")
        time.sleep(SETTLE)
        return Start(first_200, *memory(process.pid))
    finally:
        process.terminate()
        process.wait(60)
        subprocess.run(["rm", "-rf", str(data)], check=True)


def wait_for(
    process: subprocess.Popen[bytes], port: int, log: Path, done: Callable[[dict], bool]
) -> float:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"node exited: {log.read_text(errors='replace')[-2000:]}")
        health = get_health(port)
        if health is not None and done(health):
            return time.monotonic()
        time.sleep(0.01)
    raise RuntimeError("node did not answer in time")


def measure(variant: Variant, starts: int) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        runs = [start_once(variant, Path(home)) for _ in range(starts + 1)]
    first, warm = runs[0], runs[1:]
    if variant.name == "onefile":
        rows.append(row(f"{variant.name}, first start (unpacks)", variant, [first]))
    rows.append(row(variant.name, variant, warm))
    return rows


def row(name: str, variant: Variant, runs: list[Start]) -> str:
    mb = 1e6
    return (
        f"| {name} | {size_of(variant.size_path)} "
        f"| {statistics.median(r.first_200 for r in runs):.2f} s "
        f"| {statistics.median(r.rss for r in runs) / mb:.0f} MB "
        f"| {statistics.median(r.pss for r in runs) / mb:.0f} MB "
        f"| {statistics.median(r.anon for r in runs) / mb:.0f} MB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [
        "| variant | size | exec → first HTTP 200 (median) | RSS, all processes | PSS | anon PSS |",
        "|---|---|---|---|---|---|",
    ]
    for variant in variants():
        lines += measure(variant, args.starts)
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
