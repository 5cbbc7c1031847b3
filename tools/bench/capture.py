"""Capture benchmark: live capture of the synthetic 1080p30 source for N minutes.

    .venv/bin/python -m tools.bench.capture [--minutes 10] [--preset ultrafast] [--out FILE]

1. Makes the source (``tools.capture_source``: FFmpeg testsrc2, 1920×1080, 30 fps, frame
   numbers burnt in) and starts an edge node (``tests.nodeproc.NodeProcess``) whose capture
   device plays it in real time (the file source paces itself like a grabber and loops).
2. Records one clip of N minutes (``POST /api/capture/bench/start`` with ``seconds``); every
   second samples the device's counters, the CPU time and resident memory of the node and
   its encoder process (``/proc``), and the machine's load average.
3. Stop → stored: from the moment the clip's last frame is due (started + N min) until the
   stored object is reported (the node's ``store_seconds`` is the part after the encoder
   finished the MP4).
4. Prints a Markdown table (also written to ``--out``). Targets (issue 5): 0 dropped frames,
   stop → stored ≤ 2 s. No Orthanc column: Orthanc has no capture.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.edge_support import call, edge_config, new_order
from tests.nodeproc import NodeProcess
from tools.capture_source import make_source

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def run(minutes: float, preset: str, work: Path) -> dict[str, Any]:
    source = make_source(work / "testsrc2-1080p30.mp4", seconds=60)
    device = {"name": "bench", "source": str(source), "kind": "endoscopy", "preset": preset}
    node = NodeProcess(work / "data", extra_args=edge_config(work / "n.toml", [device], []))
    node.start()
    try:
        return _record(node, minutes)
    finally:
        node.stop()


def _record(node: NodeProcess, minutes: float) -> dict[str, Any]:
    new_order(node, "BENCH1")
    call(node, "GET", "/api/capture/bench/preview.jpg")  # opens the device, spawns the encoder
    assert node.process is not None
    pids = [node.process.pid, *children(node.process.pid)]
    cpu0 = {pid: cpu_seconds(pid) for pid in pids}
    status, body = call(node, "POST", "/api/capture/bench/start",
                        {"accession": "BENCH1", "seconds": minutes * 60})  # fmt: skip
    assert status == 202, body
    started = time.monotonic()
    samples: list[dict[str, Any]] = []
    cpu: dict[int, float] = {}
    while True:
        time.sleep(1)
        for pid in pids:  # the last reading of each process (the encoder may end first)
            if Path(f"/proc/{pid}").exists():
                cpu[pid] = cpu_seconds(pid) - cpu0[pid]
        state = call(node, "GET", "/api/capture/bench")[1]
        samples.append({"t": time.monotonic() - started, "load": os.getloadavg()[0],
                        "rss": {p: rss_bytes(p) for p in pids if Path(f"/proc/{p}").exists()},
                        "recording": state["recording"]})  # fmt: skip
        if state["recording"] is None:
            break
    due = started + minutes * 60
    status, clip = call(node, "POST", "/api/capture/bench/stop", timeout=600)
    reported = time.monotonic()
    elapsed = reported - started
    cpu.update({p: cpu_seconds(p) - cpu0[p] for p in pids if Path(f"/proc/{p}").exists()})
    return {"clip": clip, "elapsed": elapsed, "stop_to_stored_upper": reported - due,
            "cpu": cpu, "node_pid": pids[0], "samples": samples}  # fmt: skip


def table(result: dict[str, Any], minutes: float, preset: str) -> str:
    clip, samples = result["clip"], result["samples"]
    node_pid = result["node_pid"]
    node_cpu = result["cpu"].get(node_pid, 0.0)
    other_cpu = sum(v for p, v in result["cpu"].items() if p != node_pid)
    peak = {}
    for sample in samples:
        for pid, rss in sample["rss"].items():
            peak[pid] = max(peak.get(pid, 0), rss)
    node_rss = peak.get(node_pid, 0)
    encoder_rss = max((v for p, v in peak.items() if p != node_pid), default=0)
    loads = [s["load"] for s in samples]
    seconds = result["elapsed"]
    rows = [
        ("clip", f"{minutes:g} min, 1920×1080 @ 30 fps, libx264 {preset}"),
        ("frames in the stored object", clip.get("frames")),
        ("dropped / duplicated frames", f"{clip.get('dropped')} / {clip.get('duplicated')}"),
        ("node process CPU (capture thread, HTTP)", f"{node_cpu / seconds:.0%} of a core"),
        ("encoder (and other child) processes CPU", f"{other_cpu / seconds:.0%} of a core"),
        ("peak RSS node / encoder", f"{node_rss / 2**20:.0f} MiB / {encoder_rss / 2**20:.0f} MiB"),
        ("stop → stored: after the MP4 was finished", f"{clip.get('store_seconds')} s"),
        ("  of which probe / pad+patch+SHA-256 / archive (validate, fsync, rename, commit)",
         " / ".join(f"{clip.get('store_steps', {}).get(k, '?')} s"
                    for k in ("probe", "finish_and_hash", "archive"))),
        ("object size", f"{clip.get('store_steps', {}).get('bytes', 0) / 2**20:.0f} MiB"),
        ("stop → stored: last frame due → result reported (upper bound)",
         f"{result['stop_to_stored_upper']:.2f} s"),
        ("load average during the run min / max", f"{min(loads):.1f} / {max(loads):.1f}"),
        ("stored", clip.get("stored")),
    ]  # fmt: skip
    head = f"Host: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n\n"
    return head + "| measure | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--preset", default="ultrafast")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--json", type=Path, help="raw samples")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mekong-bench-capture-") as folder:
        result = run(args.minutes, args.preset, Path(folder))
    text = table(result, args.minutes, args.preset)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0 if result["clip"].get("stored") and not result["clip"].get("dropped") else 1


if __name__ == "__main__":
    raise SystemExit(main())
