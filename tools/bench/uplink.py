"""Replication benchmark: Mekong edge → hub against Orthanc → Orthanc peer transfer.

    .venv/bin/python -m tools.bench.uplink [--instances N] [--mbit R] [--out FILE]

One invocation (docs/benchmarks.md has the results and the reasoning):

1. Writes one CT study of N 512x512 16-bit slices (``tools.bench.synthetic``), 4 series.
2. Times a raw transfer through the bandwidth-limited proxy (``tools.bench.shaper``): the link.
3. For each link (direct loopback, then the proxy at R Mbit/s each way):
   - Mekong: a hub and an edge process (``tests.nodeproc.NodeProcess``), the edge's
     ``[uplink]`` pointing at the hub with an API token (``--mtls`` adds the enrolled,
     mutual-TLS edge); DCMTK storescu stores the study at the edge; timed from the start of the
     C-STORE until the first and the last instance answer QIDO-RS on the hub, and until the
     edge's outbox is empty (every instance confirmed by digest).
   - Orthanc: two Debian Orthanc processes; storescu stores the study at the first, then
     ``POST /peers/hub/store`` (Orthanc's HTTP peer transfer, one ``POST /instances`` per
     instance) and ``POST /modalities/hub/store`` (C-STORE) send it to the second; timed from
     the transfer request until the second holds every instance.
4. Lossless JPEG 2000 of the same study (pydicom + pylibjpeg-openjpeg): ratio, CPU per 100 MB,
   pixel-exact round trip, and the effective rate it would give on the link.
5. Prints a Markdown table with Mekong ÷ Orthanc ratios and writes it to ``--out``.

DCMTK and Orthanc run with TCP_NODELAY=1. Servers, proxy and storescu are stopped on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from tests.nodeproc import NodeProcess, free_port, peer_env
from tools.bench import dimse
from tools.bench.dimse import STORESCU, facts, settle
from tools.bench.j2k import J2kResult, measure_j2k
from tools.bench.servers import (
    FIND_AE,
    LOOPBACK,
    ORTHANC,
    STORE_AE,
    CpuMeter,
    Orthanc,
    cpu_seconds,
)  # fmt: skip
from tools.bench.shaper import LinkRate, ShapedProxy
from tools.bench.synthetic import PARTS, BenchError, files_in, write_ct_series
from tools.gendata import uid

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tools" / "bench" / "results" / "uplink.md"
MB = 1_000_000
POLL = 0.2  # seconds between looks at the receiving side
SEED = 11
_servers: list[NodeProcess | Orthanc] = []  # stopped on the way out, whatever happens


def started(server: NodeProcess | Orthanc) -> None:
    _servers.append(server)
    server.start(timeout=60)


@dataclass
class Run:
    system: str
    link: str
    files: int
    size: int  # payload: bytes of the Part 10 files
    ingest: float = 0.0  # storescu start → exit, seconds
    first: float = 0.0  # start of the timed span → first instance visible at the receiver
    last: float = 0.0  # → last instance visible
    confirmed: float = 0.0  # Mekong: → the edge's outbox empty (all confirmed by digest)
    span: float = 0.0  # the time the link could be busy, for the rate
    wire: int = 0  # bytes that went through the proxy towards the receiver
    idle: list[float] = field(default_factory=list)  # pauses of the link (proxy) in the span
    sender_cpu: float = 0.0
    receiver_cpu: float = 0.0
    other_load: float = 0.0  # share of one core used by other processes meanwhile
    loadavg: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Payload bytes per second over the span."""
        return self.size / self.span if self.span else 0.0

    def through(self, proxy: ShapedProxy | None, start: float) -> None:
        """With a proxy, the span starts at the first byte through it (``start``: the time
        the run's clock started)."""
        if proxy and proxy.first_up is not None:
            self.span -= proxy.first_up - start
            self.wire, self.idle = proxy.up_bytes, [*proxy.idle, time.monotonic() - proxy.last_up]


# --- helpers -----------------------------------------------------------------------------------


def http(url: str, headers: dict[str, str] | None = None, body: object = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data, headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def cli(*args: str) -> str:
    """Run the mekong CLI; its last output line (a token)."""
    command = [sys.executable, "-m", "mekong.shared.cli", *args]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise BenchError(f"mekong {' '.join(args[:2])}: {out.stderr[-300:]}")
    return out.stdout.strip().splitlines()[-1]


def storescu(port: int, aet: str, folders: list[Path], log: Path) -> subprocess.Popen[bytes]:
    command = [STORESCU, "-R", "+sd", "+r", "-aet", STORE_AE, "-aec", aet,
               LOOPBACK, str(port), *map(str, folders)]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, env=peer_env())
    dimse._children.append(proc)
    return proc


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out: {what}")
        time.sleep(POLL)


class Watch:
    """Polls the receiver's instance count; notes when the first and the last one showed."""

    def __init__(self, count: Callable[[], int], files: int, timeout: float) -> None:
        self.count, self.files, self.timeout = count, files, timeout
        self.start = time.monotonic()
        self.first = self.last = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def poll(self, also: Callable[[float], None] = lambda _: None) -> None:
        while True:
            now, seen = self.elapsed(), self.count()
            also(now)
            if seen and not self.first:
                self.first = now
            if seen >= self.files:
                self.last = now
                return
            if now > self.timeout:
                raise BenchError(f"{seen} of {self.files} instances after {now:.0f} s")
            time.sleep(POLL)


# --- Mekong ------------------------------------------------------------------------------------


def qido_count(node: NodeProcess, token: str, study_uid: str) -> int:
    url = f"{node.url}/dicom-web/studies/{study_uid}/instances?includefield=00080018"
    try:
        found = http(url, {"Authorization": f"Bearer {token}", "Accept": "application/dicom+json"})
    except urllib.error.HTTPError as exc:
        if exc.code in (204, 404):
            return 0
        raise
    except json.JSONDecodeError:  # 204 No Content: nothing yet
        return 0
    return len(found)  # type: ignore[arg-type]


def index_digests(data_dir: Path) -> dict[str, str]:
    index = f"file:{data_dir / 'index.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(index, uri=True)) as db:
        return dict(db.execute("SELECT sop_uid, digest FROM instance").fetchall())


def config_text(settings: list[str], uplink: list[str]) -> str:
    """TOML of ``section.key=value`` settings, plus ``uplink`` lines in ``[uplink]``."""
    sections: dict[str, list[str]] = {"uplink": list(uplink)}
    for setting in settings:
        name, value = setting.split("=", 1)
        section, key = name.strip().rsplit(".", 1)
        sections.setdefault(section, []).append(f"{key} = {value.strip()}")
    return "".join(f"[{name}]\n" + "".join(f"{line}\n" for line in lines)
                   for name, lines in sections.items())  # fmt: skip


def start_pair(
    root: Path, proxy: ShapedProxy | None, mtls: bool, settings: list[str]
) -> tuple[NodeProcess, NodeProcess]:
    """A hub and an edge sending to it, directly or through ``proxy``."""
    mtls_port = free_port()
    hub_toml = root / "hub.toml"
    advertised = f"https://127.0.0.1:{proxy.port if proxy else mtls_port}"
    hub_settings = f'[hub]\nmtls_port = {mtls_port}\nmtls_url = "{advertised}"\n'
    hub_toml.write_text(hub_settings)  # a free port: the default 8443 may be taken
    hub = NodeProcess(root / "hub", mode="hub", trusted_loopback=False,
                      extra_args=["--config", str(hub_toml)])  # fmt: skip
    started(hub)
    edge_toml, args, lines = root / "edge.toml", [], []
    if mtls:
        if proxy:
            proxy.target = mtls_port
        token = cli("site", "add", "bench", "--data", str(hub.data_dir))
        args = ["--hub-url", hub.url, "--enroll-token", token]
    else:
        port = hub.http_port
        if proxy:
            proxy.target, port = port, proxy.port
        token = cli("token", "create", "edge_uplink", "--role", "technician",
                    "--data", str(hub.data_dir))  # fmt: skip
        lines += [f'url = "http://127.0.0.1:{port}/dicom-web"', f'token = "{token}"']
    edge_toml.write_text(config_text(settings, lines))
    edge = NodeProcess(root / "edge", extra_args=["--config", str(edge_toml), *args])
    started(edge)
    if mtls:
        wait_until(lambda: edge.health().get("hub", {}).get("enrolled") is True, 60, "enrollment")
    return hub, edge


def mekong_run(
    root: Path, data: list[Path], study_uid: str, proxy: ShapedProxy | None, mtls: bool,
    settings: list[str], timeout: float,
) -> Run:  # fmt: skip
    files, size = files_in(data)
    j2k = "uplink.j2k_lossless=true" in settings
    name = "Mekong (enrolled, mTLS)" if mtls else "Mekong ([uplink] token)"
    run = Run(name + (", j2k_lossless" if j2k else ""), link_name(proxy), files, size)
    root.mkdir(parents=True)
    hub, edge = start_pair(root, proxy, mtls, settings)
    try:
        reader = cli("token", "create", "bench_reader", "--role", "radiologist",
                     "--data", str(hub.data_dir))  # fmt: skip
        settle()
        meter = Meter(edge.process, hub.process)  # type: ignore[arg-type]
        run.loadavg = os.getloadavg()[0]
        if proxy:
            proxy.reset()
        watch = Watch(lambda: qido_count(hub, reader, study_uid), files, timeout)
        proc = storescu(edge.dicom_port, "MEKONG", data, root / "storescu.log")
        watch.poll(lambda now: _note_ingest(run, proc, now))
        run.first, run.last = watch.first, watch.last
        wait_until(lambda: edge.health()["uplink"]["queue_depth"] == 0, timeout, "outbox empty")
        run.confirmed = run.span = watch.elapsed()
        run.through(proxy, watch.start)
        _note_ingest(run, proc, run.confirmed, wait=True)
        run.sender_cpu, run.receiver_cpu, run.other_load = meter.stop(run.span)
        edge_digests, hub_digests = index_digests(edge.data_dir), index_digests(hub.data_dir)
        if len(edge_digests) != files or (
            hub_digests.keys() != edge_digests.keys() if j2k else hub_digests != edge_digests
        ):  # re-encoded copies: confirmed by the digest of what was sent (outbox empty)
            run.errors.append(f"hub {len(hub_digests)} / edge {len(edge_digests)}: digests differ")
    finally:
        edge.stop()
        hub.stop()
    return run


class Meter:
    """CPU of the sender and the receiver process (and their children), and of anything else."""

    def __init__(self, sender: subprocess.Popen, receiver: subprocess.Popen) -> None:  # type: ignore[type-arg]
        self.pids = sender.pid, receiver.pid
        self.others = CpuMeter(*[SimpleNamespace(pid=p) for p in self.pids])  # type: ignore[arg-type]
        self.start = [cpu_seconds(p) for p in self.pids]

    def stop(self, seconds: float) -> tuple[float, float, float]:
        """(sender CPU s, receiver CPU s, other processes' share of one core)."""
        sender, receiver = (cpu_seconds(p) - s for p, s in zip(self.pids, self.start, strict=True))
        return sender, receiver, self.others.stop()[1] / seconds


def _note_ingest(run: Run, proc: subprocess.Popen[bytes], now: float, wait: bool = False) -> None:
    if run.ingest:
        return
    code = proc.wait() if wait else proc.poll()
    if code is None:
        return
    run.ingest = now
    dimse._children.remove(proc)
    if code != 0:
        run.errors.append(f"storescu exit {code}")


# --- Orthanc -----------------------------------------------------------------------------------


def orthanc_pair(root: Path, proxy: ShapedProxy | None) -> tuple[Orthanc, Orthanc]:
    """Two Orthanc processes; the first knows the second as peer and as modality ``hub``."""
    clients = {"storescu": [STORE_AE, LOOPBACK, 104], "bench": [FIND_AE, LOOPBACK, 104]}
    hub = Orthanc(root / "hub")
    hub.settings = {"DicomModalities": {**clients, "edge": ["ORTHANC", LOOPBACK, 104]}}
    started(hub)
    edge = Orthanc(root / "edge")
    http_port, dicom_port = hub.http_port, hub.dicom_port
    if proxy:  # one proxy: the run's transfer kind decides its target (set_target)
        http_port = dicom_port = proxy.port
    edge.settings = {
        "DicomModalities": {**clients, "hub": ["ORTHANC", LOOPBACK, dicom_port]},
        "OrthancPeers": {"hub": [f"http://{LOOPBACK}:{http_port}/"]},
    }
    started(edge)
    return edge, hub


def orthanc_run(
    root: Path, data: list[Path], proxy: ShapedProxy | None, kind: str, timeout: float
) -> Run:
    """``kind``: ``peers`` (HTTP) or ``modalities`` (C-STORE)."""
    files, size = files_in(data)
    label = "Orthanc → Orthanc, " + (
        "peer (HTTP POST /instances)" if kind == "peers" else "modality (C-STORE)"
    )
    run = Run(label, link_name(proxy), files, size)
    edge, hub = orthanc_pair(root, proxy)
    try:
        if proxy:
            proxy.target = hub.http_port if kind == "peers" else hub.dicom_port
        settle()
        start = time.monotonic()
        proc = storescu(edge.port, edge.aet, data, root / "storescu.log")
        _note_ingest(run, proc, 0.0, wait=True)
        run.ingest = time.monotonic() - start
        if edge.instances() != files:
            raise BenchError(f"Orthanc stored {edge.instances()} of {files}")
        settle()
        assert edge.process and hub.process
        meter = Meter(edge.process, hub.process)
        run.loadavg = os.getloadavg()[0]
        (study,) = http(f"{edge.url}/studies")  # type: ignore[misc]
        if proxy:
            proxy.reset()
        watch = Watch(hub.instances, files, timeout)
        job = http(
            f"{edge.url}/{kind}/hub/store", body={"Resources": [study], "Asynchronous": True}
        )
        watch.poll()
        run.first, run.last = watch.first, watch.last
        job_id = job["ID"]  # type: ignore[index]
        wait_until(lambda: http(f"{edge.url}/jobs/{job_id}")["State"] == "Success", timeout, "job")  # type: ignore[index]
        run.confirmed = run.span = watch.elapsed()
        run.through(proxy, watch.start)
        run.sender_cpu, run.receiver_cpu, run.other_load = meter.stop(run.span)
        # the C-STORE → visible time: ingest, then the transfer (started by hand here)
        run.first += run.ingest
        run.last += run.ingest
        run.confirmed += run.ingest
    finally:
        edge.stop()
        hub.stop()
    return run


# --- report ------------------------------------------------------------------------------------


def link_name(proxy: ShapedProxy | None) -> str:
    return f"{proxy.rate * 8 / MB:g} Mbit/s proxy" if proxy else "loopback"


def _mbit(rate: float) -> str:
    return f"{rate / MB:.1f} MB/s · {rate * 8 / MB:.1f} Mbit/s"


def _idle(run: Run) -> str:
    return f"{sum(run.idle):.1f} s ({len(run.idle)})" if "proxy" in run.link else "—"


def run_rows(runs: list[Run], link: LinkRate | None) -> list[str]:
    lines = [
        "| system | link | C-STORE at the sender | first visible | last visible | all confirmed "
        "| link busy | link idle (pauses) | effective rate | of the link | on the wire ÷ payload "
        "| sender CPU | receiver CPU | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        fraction = f"{100 * r.rate / link.up:.0f} %" if link and "proxy" in r.link else "—"
        load = f"{r.loadavg:.2f} · other {100 * r.other_load:.0f} %"
        lines.append(
            f"| {r.system} | {r.link} | {r.ingest:.1f} s | {r.first:.1f} s | {r.last:.1f} s "
            f"| {r.confirmed:.1f} s | {r.span:.1f} s | {_idle(r)} | {_mbit(r.rate)} | {fraction} "
            f"| {f'{r.wire / r.size:.3f}' if r.wire else '—'} | {r.sender_cpu:.1f} s "
            f"| {r.receiver_cpu:.1f} s | {load}"
            + (f" ⚠ {'; '.join(r.errors)}" if r.errors else "")
            + " |"
        )
    return lines


def ratio_rows(runs: list[Run]) -> list[str]:
    lines = [
        "| link | Mekong run | Orthanc run | effective rate M ÷ O | C-STORE → last visible O ÷ M |",
        "|---|---|---|---:|---:|",
    ]
    for mekong in (r for r in runs if r.system.startswith("Mekong")):
        for orthanc in (r for r in runs if r.system.startswith("Orthanc")):
            if orthanc.link == mekong.link and orthanc.rate and mekong.last:
                lines.append(
                    f"| {mekong.link} | {mekong.system} | {orthanc.system} "
                    f"| {mekong.rate / orthanc.rate:.2f}× | {orthanc.last / mekong.last:.2f}× |"
                )
    return lines


def j2k_rows(j2k: J2kResult, link: LinkRate | None) -> list[str]:
    lines = [
        "| measure | value |",
        "|---|---:|",
        f"| instances encoded, pixel-exact after decoding | {j2k.files} · {j2k.exact} |",
        f"| bytes before → after (Part 10) | {j2k.before / MB:.1f} MB → {j2k.after / MB:.1f} MB |",
        f"| compression ratio | {j2k.ratio:.2f} : 1 |",
        f"| encode CPU per 100 MB of input | {j2k.encode_cpu_per_100mb:.1f} s |",
        f"| decode CPU per 100 MB of input | {j2k.decode_cpu_per_100mb:.1f} s |",
        f"| encoder throughput on {j2k.workers} cores (from the CPU time) "
        f"| {_mbit(j2k.before / j2k.encode_cpu * j2k.workers)} of input |",
        f"| wall time, read + encode + decode + compare, {j2k.workers} processes "
        f"| {j2k.wall:.1f} s |",
    ]
    if link:
        effective = min(link.up * j2k.ratio, j2k.before / j2k.encode_cpu * j2k.workers)
        lines.append(
            f"| effective rate on the {link.up * 8 / MB:.1f} Mbit/s link (link × ratio, capped "
            f"by the encoder on {j2k.workers} cores) | {_mbit(effective)} "
            f"= {effective / link.up:.2f}× the link |"
        )
    return lines


def report(
    info: dict[str, str], link: LinkRate | None, runs: list[Run], j2k: J2kResult | None
) -> str:
    lines = [
        f"Run {info['date']} — `{info['command']}`",
        "",
        f"- Machine: {info['machine']}",
        f"- Versions: {info['orthanc']}; {info['dcmtk']}; Mekong {info['mekong']}; "
        f"{info['python']}",
        f"- Mekong edge settings: {info['settings']}",
        f"- Study: {runs[0].files if runs else 0} CT instances, "
        f"{runs[0].size / MB if runs else 0:.1f} MB (Part 10 files)",
    ]
    if link:
        lines.append(
            f"- Link (raw transfer through the proxy): up {_mbit(link.up)} "
            f"({link.up_bytes / MB:.0f} MB in {link.up_seconds:.2f} s), down {_mbit(link.down)}"
        )
    lines += ["", *run_rows(runs, link), "", *ratio_rows(runs)]
    if j2k:
        lines += [
            "",
            "Lossless JPEG 2000 of the same study, offline (tools/bench/j2k.py):",
            "",
            *j2k_rows(j2k, link),
        ]
    lines += [
        "",
        "Times from the start of the C-STORE at the sender (Orthanc: C-STORE, then the transfer "
        "started by REST when it ended). Link busy: through the proxy, from the start of the "
        "first run of ≥ 256 KB towards the receiver without a 50 ms pause until all confirmed "
        "(link idle: the sum of the pauses > 50 ms "
        "between bytes towards the receiver in that span, the last byte → all confirmed "
        "included, and their number); on loopback, Mekong from the C-STORE start (storing "
        "and sending overlap), Orthanc from the transfer request. Effective rate = "
        "payload (Part 10 bytes) ÷ link busy; of the link = effective rate ÷ the measured link "
        "rate. Load = 1-minute load average at the start, and the share of one core other "
        "processes used during the span.",
    ]
    return "\n".join(lines) + "\n"


# --- main --------------------------------------------------------------------------------------


def write_study(root: Path, instances: int) -> tuple[list[Path], str]:
    """One CT study of ``instances`` slices in PARTS series folders; (folders, study UID)."""
    folders = [root / f"series{k + 1}" for k in range(PARTS)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        jobs = [
            pool.submit(write_ct_series, folder, instances // PARTS + (k < instances % PARTS),
                        SEED, k + 1)
            for k, folder in enumerate(folders)
        ]  # fmt: skip
        for job in jobs:
            job.result()
    return folders, uid(SEED, "bench-ct-study")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tools.bench.uplink", description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=300, help="CT slices (default 300)")
    parser.add_argument("--mbit", type=float, default=20.0, help="proxy rate each way, Mbit/s")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="proxy one-way latency")
    parser.add_argument("--links", default="loopback,proxy", help="which links to run")
    systems = "mekong, mekong-mtls, mekong-j2k, orthanc-peers, orthanc-modalities"
    parser.add_argument("--systems", default="mekong,mekong-mtls,mekong-j2k,orthanc-peers,"
                        "orthanc-modalities", help=f"some of: {systems}")  # fmt: skip
    parser.add_argument("--edge", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="edge setting, e.g. recon.enabled=false (TOML value)")  # fmt: skip
    parser.add_argument("--no-j2k", action="store_true", help="skip the JPEG 2000 measurement")
    parser.add_argument("--timeout", type=float, default=900.0, help="per run, seconds")
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--tmp", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    return parser.parse_args(argv)


def run_all(args: argparse.Namespace, root: Path, data: list[Path], study_uid: str,
            proxy: ShapedProxy) -> list[Run]:  # fmt: skip
    runs = []
    settings = args.edge
    for link in args.links.split(","):
        via = proxy if link == "proxy" else None
        for system in args.systems.split(","):
            where = root / f"{system}-{link}"
            print(f"{system} over {link_name(via)}", flush=True)
            if system.startswith("mekong"):
                extra = ["uplink.j2k_lossless=true"] if system == "mekong-j2k" else []
                run = mekong_run(where, data, study_uid, via, system == "mekong-mtls",
                                 settings + extra, args.timeout)  # fmt: skip
            else:
                run = orthanc_run(where, data, via, system.split("-")[1], args.timeout)
            print("\n".join(run_rows([run], None)[2:]), flush=True)
            runs.append(run)
    return runs


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    for tool in (STORESCU, ORTHANC):
        if not os.access(tool, os.X_OK):
            raise BenchError(f"{tool} missing: make bench-sync installs dcmtk and orthanc")
    dimse._patience["seconds"] = args.quiet_wait
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    info = facts(argv)
    info["command"] = " ".join([".venv/bin/python -m tools.bench.uplink", *argv]).strip()
    info["settings"] = "; ".join(args.edge) or "built-in defaults (uplink url and token only)"
    root = Path(tempfile.mkdtemp(prefix="mekong-bench-uplink-", dir=args.tmp))
    proxy = ShapedProxy(args.mbit * MB / 8, delay=args.delay_ms / 1000).start()
    try:
        print(f"data and servers under {root}", flush=True)
        data, study_uid = write_study(root / "data", args.instances)
        link = None
        if "proxy" in args.links:
            link = proxy.measure(
                min(20 * MB, int(proxy.rate * 8)), min(10 * MB, int(proxy.rate * 4))
            )
            print(f"link: up {_mbit(link.up)}, down {_mbit(link.down)}", flush=True)
        runs = run_all(args, root, data, study_uid, proxy)
        j2k = None if args.no_j2k else measure_j2k(data)
        table = report(info, link, runs, j2k)
        print()
        print(table)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
        print(f"written to {args.out}; total {time.monotonic() - began:.0f} s")
        return 1 if any(r.errors for r in runs) else 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", file=sys.stderr)
        return 130
    finally:
        proxy.close()
        dimse._stop_all(_servers)  # type: ignore[arg-type]
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
