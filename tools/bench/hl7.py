"""HL7 benchmark: sustained MLLP messages/s (ORM^O01 NW) and ORM → order visible latency.

    .venv/bin/python -m tools.bench.hl7 [--messages N] [--latency-samples M] [--connections C]

1. Starts a Mekong node (``tests.nodeproc.NodeProcess``, one DICOM process) in a temporary
   folder.
2. Throughput: N ORM^O01 NW messages (Vietnamese patient, one new order each, 200 patients)
   sent back to back over C MLLP connections (default 1), each waiting for its ACK before the
   next, as a HIS does. Every ACK must be AA. Reports messages/s and ACK latency.
3. Latency: M more orders, one at a time: time from the first byte sent until
   ``GET /api/orders/{accession}`` answers 200 (ACK wait + one HTTP read; the ACK leaves after
   the commit, so the order is readable as soon as the ACK arrives).
4. Prints a Markdown table and writes it to ``--out``.

Issue 4 targets: ≥ 500 msg/s sustained, ≤ 200 ms ORM → visible (the MWL step comes later).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from tests.nodeproc import NodeProcess
from tools.hl7send import MllpClient, ack_fields, orm

FIRST_NAMES = ("Nguyễn^Thị Hồng Nhung", "Trần^Văn Đức", "Lê^Thị Ngọc Ánh", "Phạm^Quốc Bảo")


def message(n: int, prefix: str) -> bytes:
    return orm(f"{prefix}{n}", f"{prefix}{n}", patient=f"BN{n % 200:05d}^^^BVCR",
               name=FIRST_NAMES[n % len(FIRST_NAMES)], start="20261126090000").encode()  # fmt: skip


def throughput(node: NodeProcess, count: int, connections: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()

    def sender(worker: int) -> None:
        mine: list[float] = []
        with MllpClient("127.0.0.1", node.hl7_port) as client:
            for n in range(worker, count, connections):
                started = time.perf_counter()
                ack = client.send(message(n, "T"))
                mine.append(time.perf_counter() - started)
                if ack_fields(ack)["code"] != "AA":
                    raise RuntimeError(f"message {n} not accepted: {ack!r}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if len(latencies) != count:
        raise RuntimeError("a sender failed; see above")
    return count / elapsed, latencies


def visible_latency(node: NodeProcess, samples: int) -> list[float]:
    out = []
    with MllpClient("127.0.0.1", node.hl7_port) as client:
        for n in range(samples):
            started = time.perf_counter()
            client.send(message(n, "L"))
            with urllib.request.urlopen(f"{node.url}/api/orders/L{n}", timeout=10) as response:
                assert response.status == 200
            out.append(time.perf_counter() - started)
    return out


def commit_floor(folder: Path, count: int = 300) -> list[float]:
    """Latency of a bare durable SQLite commit (WAL, synchronous=FULL, one row) on the same
    disk: the floor under every acknowledged message."""
    db = sqlite3.connect(folder / "floor.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (x)")
    out = []
    for n in range(count):
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (n,))
        db.execute("COMMIT")
        out.append(time.perf_counter() - started)
    db.close()
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(value: float) -> str:
    return f"{value * 1000:.1f}"


def revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                               text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools.bench.hl7", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("tools/bench/results/hl7-latest.md"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mekong-bench-hl7-") as tmp:
        config = Path(tmp) / "node.toml"
        config.write_text("[dicom]\nworkers = 1\n")
        node = NodeProcess(Path(tmp) / "data", extra_args=["--config", str(config)]).start()
        try:
            rate, acks = throughput(node, args.messages, args.connections)
            visible = visible_latency(node, args.latency_samples)
        finally:
            node.stop()
        floor = commit_floor(Path(tmp))
    lines = [
        f"HL7 benchmark, {datetime.date.today()}, revision {revision()}, {platform.node()}, "
        f"Python {platform.python_version()}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| ORM^O01 NW sustained, {args.connections} connection(s), {args.messages} messages "
        f"| **{rate:.0f} msg/s** |",
        f"| ACK latency median / p95 / max (ms) | {ms(statistics.median(acks))} / "
        f"{ms(percentile(acks, 95))} / {ms(max(acks))} |",
        f"| ORM → order readable over REST, median / p95 / max (ms), {len(visible)} orders | "
        f"{ms(statistics.median(visible))} / {ms(percentile(visible, 95))} / {ms(max(visible))} |",
        f"| floor: bare SQLite durable commit on the same disk, median / p95 (ms) | "
        f"{ms(statistics.median(floor))} / {ms(percentile(floor, 95))} |",
        f"| load average at the end (1 min), CPUs | {os.getloadavg()[0]:.2f}, {os.cpu_count()} |",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
