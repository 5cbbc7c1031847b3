"""DIMSE benchmark: a Mekong node against Debian's Orthanc, side by side, same generated data.

    .venv/bin/python -m tools.bench.dimse [--instances N] [--find-instances M] [--out FILE]

One invocation (docs/benchmarks.md has the results and the reasoning):

1. Generates two sets of N CT 512x512 16-bit instances (``tools.gendata.ct_series``), each one
   study of 4 series in 4 folders, and M small 16x16 instances, ~50 per study, for Vietnamese-
   looking patients, in 4 folders.
2. Starts Orthanc (its own temporary JSON config: no plugins, SyncStorageArea on) and a Mekong
   node (``tests.nodeproc.NodeProcess``) on free ports, both keeping their data in one temporary
   folder on the same disk.
3. C-STORE with DCMTK storescu (``-R``, default Explicit VR LE first): CT set 1 on one
   association, CT set 2 on 4 parallel associations (one folder each), then the small set on 4
   parallel associations. Every store is checked against the servers' own instance counts
   (Mekong ``/api/health``, Orthanc ``/statistics``).
4. Study-level C-FIND latency with N*2 + M instances in each index, over one persistent
   pynetdicom association per server (TCP_NODELAY on): by PatientID, by PatientName prefix, by
   StudyDate range + ModalitiesInStudy. Each query goes to both servers (alternating which
   first) and their match counts are compared.
5. Prints a Markdown table and writes it to ``--out``.

``--profile DIR`` adds, after the measurements, an untimed py-spy recording of Mekong ingesting
a further CT set, and writes a hot-spot summary there.

DCMTK and Orthanc run with TCP_NODELAY=1 (without it they stall ~45 ms per message here). The
servers, every storescu and py-spy are stopped on the way out, Ctrl-C and errors included.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pynetdicom
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from tests.nodeproc import peer_env
from tools.bench.servers import (
    FIND_AE,
    LOOPBACK,
    ORTHANC,
    STORE_AE,
    CpuMeter,
    Mekong,
    Orthanc,
    Server,
)
from tools.bench.synthetic import (
    FIRST_STUDY_DAY,
    MODALITIES,
    PARTS,
    STUDY_DAYS,
    BenchError,
    Study,
    files_in,
    generate,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tools" / "bench" / "results" / "latest.md"
STORESCU = "/usr/bin/storescu"  # the venv has pynetdicom scripts of the same name
SETTLE_SECONDS = 2.0
MB = 1_000_000

# The study-level keys a worklist/study browser asks for.
RETURN_KEYS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "StudyDescription",
    "ReferringPhysicianName",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SHAPES = {
    "patient_id": "PatientID exact",
    "name_prefix": "PatientName prefix*",
    "date_modality": "StudyDate 7-day range + ModalitiesInStudy",
}


# --- C-STORE -----------------------------------------------------------------------------------


@dataclass
class Ingest:
    label: str
    server: str
    files: int
    bytes: int
    seconds: float
    stored: int
    cpu_seconds: float
    other_cpu_seconds: float  # used by other processes on the machine meanwhile
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.stored == self.files

    @property
    def rate(self) -> float:
        return self.files / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.seconds


_children: list[subprocess.Popen[bytes]] = []


QUIET = 0.25  # other processes may use this share of one core when a timed run starts
_patience = {"seconds": 120.0}


def settle() -> None:
    """Let the previous run's writes and background work finish, and wait (bounded) until
    other processes on the machine are quiet, before timing the next run."""
    os.sync()
    time.sleep(SETTLE_SECONDS)
    deadline, told = time.monotonic() + _patience["seconds"], False
    while True:
        meter = CpuMeter()
        time.sleep(1.0)
        other = meter.stop()[1]
        if other < QUIET or time.monotonic() > deadline:
            return
        if not told:
            print(f"  (other processes use {100 * other:.0f}% of a core: waiting for quiet)")
            told = True


def ingest(
    server: Server, groups: list[list[Path]], label: str, logs: Path, wait: bool = True
) -> Ingest:
    """One storescu per group (one association each), all at once; timed until the last ends."""
    files, size = files_in([f for group in groups for f in group])
    before = server.instances()
    if wait:
        settle()
    meter = CpuMeter(server)
    procs, log_paths = [], []
    start = time.perf_counter()
    for n, group in enumerate(groups):
        log_path = logs / f"storescu-{server.name}-{label}-{n}.log".replace(" ", "_")
        log_paths.append(log_path)
        with open(log_path, "wb") as log:
            command = [
                STORESCU, "-R", "+sd", "+r", "-aet", STORE_AE, "-aec", server.aet,
                LOOPBACK, str(server.port), *map(str, group),
            ]  # fmt: skip
            proc = subprocess.Popen(command, stdout=log, stderr=log, env=peer_env())
        procs.append(proc)
        _children.append(proc)
    codes = [proc.wait() for proc in procs]
    seconds = time.perf_counter() - start
    cpu, other = meter.stop()
    for proc in procs:
        _children.remove(proc)
    stored = server.instances() - before
    errors = [
        f"storescu exit {code}: {log_path.read_text(errors='replace')[-300:]}"
        for code, log_path in zip(codes, log_paths, strict=True)
        if code != 0
    ]
    if stored != files:
        errors.append(f"{stored} of {files} instances stored")
    result = Ingest(label, server.name, files, size, seconds, stored, cpu, other, errors)
    print(
        f"  {server.name:8s} {label}: {files} files, {result.seconds:7.1f} s, "
        f"{result.rate:7.1f} inst/s, {result.mb_per_s:6.1f} MB/s, "
        f"server CPU {1000 * cpu / files:5.1f} ms/inst, other load {100 * other / seconds:3.0f}%"
        + ("" if result.ok else f"  FAILED: {'; '.join(errors)}"),
        flush=True,
    )
    return result


# --- C-FIND ------------------------------------------------------------------------------------


@dataclass
class Query:
    shape: str
    keys: dict[str, str]

    def identifier(self) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        for keyword in RETURN_KEYS:
            setattr(ds, keyword, self.keys.get(keyword, ""))
        return ds


def plan_queries(studies: list[Study], per_shape: int, seed: int) -> list[Query]:
    """``per_shape`` queries of each shape, interleaved, for patients and dates that exist."""
    rng = random.Random(seed + 77)
    weights = [MODALITIES[m][0] for m in MODALITIES]
    queries = []
    for _ in range(per_shape):
        patient = rng.choice(studies).patient
        queries.append(Query("patient_id", {"PatientID": patient.patient_id}))
        patient = rng.choice(studies).patient
        prefix = f"{patient.family}^{patient.middle} {patient.given[0]}*"
        queries.append(Query("name_prefix", {"PatientName": prefix}))
        first = FIRST_STUDY_DAY + datetime.timedelta(days=rng.randrange(STUDY_DAYS - 7))
        last = first + datetime.timedelta(days=6)
        modality = rng.choices(list(MODALITIES), weights=weights)[0]
        dates = f"{first:%Y%m%d}-{last:%Y%m%d}"
        queries.append(Query("date_modality", {"StudyDate": dates, "ModalitiesInStudy": modality}))
    return queries


@dataclass
class FindResults:
    latencies: dict[str, dict[str, list[float]]]  # server → shape → seconds
    matches: dict[str, dict[str, list[int]]]  # server → shape → matches per query
    echo: dict[str, list[float]]
    mismatches: list[str]
    other_load: float = 0.0  # share of one core used by other processes meanwhile


def _find(assoc: Association, query: Query) -> tuple[float, int]:
    identifier = query.identifier()
    start = time.perf_counter()
    matches = 0
    final = None
    for status, _identifier in assoc.send_c_find(
        identifier, StudyRootQueryRetrieveInformationModelFind
    ):
        code = getattr(status, "Status", None)
        if code in (0xFF00, 0xFF01):
            matches += 1
        else:
            final = code
    elapsed = time.perf_counter() - start
    if final != 0x0000:
        raise BenchError(f"C-FIND {query.keys} ended with status {final!r}")
    return elapsed, matches


def _echo(assoc: Association) -> float:
    start = time.perf_counter()
    status = assoc.send_c_echo()
    elapsed = time.perf_counter() - start
    if getattr(status, "Status", None) != 0x0000:
        raise BenchError("C-ECHO failed")
    return elapsed


def run_queries(servers: list[Server], queries: list[Query], warmup: int = 10) -> FindResults:
    ae = AE(ae_title=FIND_AE)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
    assocs: dict[str, Association] = {}
    results = FindResults(
        {s.name: collections.defaultdict(list) for s in servers},
        {s.name: collections.defaultdict(list) for s in servers},
        {s.name: [] for s in servers},
        [],
    )
    try:
        for server in servers:
            assoc = ae.associate(LOOPBACK, server.port, ae_title=server.aet)
            if not assoc.is_established:
                raise BenchError(f"no association with {server.name}")
            assocs[server.name] = assoc
            # pynetdicom leaves Nagle on: small requests would wait for delayed ACKs
            assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        meter, start = CpuMeter(*servers), time.perf_counter()
        for query in queries[:warmup]:
            for server in servers:
                _find(assocs[server.name], query)
        for i in range(50):
            for server in servers if i % 2 == 0 else servers[::-1]:
                results.echo[server.name].append(_echo(assocs[server.name]))
        for i, query in enumerate(queries):
            counts = {}
            for server in servers if i % 2 == 0 else servers[::-1]:
                elapsed, matches = _find(assocs[server.name], query)
                results.latencies[server.name][query.shape].append(elapsed)
                results.matches[server.name][query.shape].append(matches)
                counts[server.name] = matches
            if len(set(counts.values())) > 1:
                results.mismatches.append(f"{query.keys}: {counts}")
        results.other_load = meter.stop()[1] / (time.perf_counter() - start)
    finally:
        for assoc in assocs.values():
            with contextlib.suppress(Exception):
                assoc.release()
    return results


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# --- profile -----------------------------------------------------------------------------------


def py_spy() -> str | None:
    return shutil.which("py-spy") or next(
        (str(p) for p in [Path(sys.executable).parent / "py-spy"] if p.exists()), None
    )


@contextlib.contextmanager
def recording(pid: int, out: Path, *mode: str) -> Iterator[None]:
    spy = py_spy()
    if spy is None:
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    command = [spy, "record", "--pid", str(pid), "--rate", "200", "--threads", "--subprocesses"]
    command += ["--format", "raw"]
    proc = subprocess.Popen(
        [*command, *mode, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _children.append(proc)
    time.sleep(1.0)  # attached
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _children.remove(proc)


_GENERIC = re.compile(r"\((threading|runpy|<frozen runpy>|asyncio/(runners|base_events))")
_PROCESSES = re.compile(r'(process \d+:"[^"]*";)+')
_LIBRARY = re.compile(r"\(/\S*?/(site-packages|lib/python3\.\d+)/")
_PRODUCT = re.compile(r"\(/\S*?/(?=(shared|edge|central|tools|tests)/)")


def _samples(raw: Path, merge: bool) -> Iterator[tuple[str, list[str], int]]:
    """(thread, frames outermost first, count) per line of a py-spy raw profile; with
    ``merge``, threads that differ only by numbers form one group."""
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        processes = _PROCESSES.match(stack)
        pids = re.findall(r"process (\d+):", processes.group(0)) if processes else []
        frames = stack[processes.end() if processes else 0 :].split(";")
        thread = re.sub(r"^thread \(\d+\)(: )?", "", frames[0])
        thread = re.sub(r"[@-]?\d+" if merge else r"@\d{8,}", "", thread).strip() or "thread"
        if len(pids) > 1:  # a child process of the node (a DICOM worker)
            thread = f"child{'' if merge else ' ' + pids[-1]}: {thread}"
        cleaned = [_PRODUCT.sub("(", _LIBRARY.sub("(", frame)) for frame in frames[1:]]
        yield thread, [f for f in cleaned if not _GENERIC.search(f)], int(count)


def _top(counter: collections.Counter[str], total: int, top: int) -> list[str]:
    return [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in counter.most_common(top)]


def summarize(raw: Path, top: int = 20) -> str:
    """GIL profile: share of all samples by thread and by frame (inclusive and leaf).
    Wall-clock profile: for each thread that is not merely idle, where its time goes."""
    threads: collections.Counter[str] = collections.Counter()
    inclusive: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    leaf: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for thread, frames, n in _samples(raw, merge="gil" in raw.name):
        threads[thread] += n
        for frame in set(frames):
            inclusive[thread][frame] += n
            inclusive["*"][frame] += n
        if frames:
            leaf[thread][frames[-1]] += n
            leaf["*"][frames[-1]] += n
    total = sum(threads.values()) or 1
    lines = [f"== {raw.name}: {total} samples", "by thread:"]
    lines += _top(threads, total, 8)
    if "gil" in raw.name:
        lines += ["inclusive (all threads):", *_top(inclusive["*"], total, top)]
        lines += ["leaf (all threads):", *_top(leaf["*"], total, top // 2)]
        return "\n".join(lines)
    for thread, total in threads.most_common():
        if leaf[thread] and leaf[thread].most_common(1)[0][1] < 0.97 * total:  # not just idle
            lines.append(f"[{thread}] where its wall-clock time goes (leaf frames):")
            lines += _top(leaf[thread], total, top // 2)
    return "\n".join(lines)


def profile(mekong: Mekong, folders: list[Path], out_dir: Path, logs: Path) -> str:
    """Untimed: Mekong ingests a further CT set, half on 1 association under a wall-clock
    recording (idle included), half on 2 associations under a GIL (CPU) recording."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wall, gil = out_dir / "mekong-store-wall.txt", out_dir / "mekong-store-gil.txt"
    settle()
    with recording(mekong.pid, wall, "--idle"):
        ingest(mekong, [folders[:2]], "profile wall-clock", logs, wait=False)
    settle()
    with recording(mekong.pid, gil, "--gil"):
        ingest(mekong, [[folders[2]], [folders[3]]], "profile GIL", logs, wait=False)
    summary = summarize(wall) + "\n\n" + summarize(gil)
    (out_dir / "summary.txt").write_text(summary + "\n")
    return summary


# --- report ------------------------------------------------------------------------------------


def facts(argv: list[str]) -> dict[str, str]:
    def first_line(command: list[str]) -> str:
        try:
            out = subprocess.run(command, capture_output=True, text=True, env=peer_env())
            if out.returncode != 0:
                return "?"
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    meminfo = dict(
        line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    ram_gib = int(meminfo["MemTotal"].split()[0]) / 1024**2
    commit = first_line(["git", "-C", str(REPO), "describe", "--always", "--dirty"])
    if commit == "?":  # not a checkout, e.g. a `git archive` export
        commit = os.environ.get("MEKONG_REVISION", "?")
    return {
        "command": " ".join([".venv/bin/python -m tools.bench.dimse", *argv]).strip(),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{os.cpu_count()} CPUs ({cpu}), {ram_gib:.1f} GiB RAM, "
        f"Linux {platform.release()}",
        "orthanc": first_line([ORTHANC, "--version"]).replace(ORTHANC, "Orthanc"),
        "dcmtk": first_line([STORESCU, "--version"]).strip("$ "),
        "mekong": f"git {commit}",
        "python": f"Python {platform.python_version()}, pydicom {pydicom.__version__}, "
        f"pynetdicom {pynetdicom.__version__}, SQLite {sqlite3.sqlite_version}",
    }


def _rate(result: Ingest) -> str:
    text = f"{result.rate:,.1f} inst/s · {result.mb_per_s:,.1f} MB/s"
    if result.other_cpu_seconds / result.seconds > QUIET:
        text += f" (⚠ other load {100 * result.other_cpu_seconds / result.seconds:.0f}%)"
    return text if result.ok else f"{text} ⚠ {'; '.join(result.errors)[:80]}"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def report(
    info: dict[str, str],
    ingests: dict[str, dict[str, Ingest]],
    finds: FindResults | None,
    index_sizes: dict[str, int],
    per_shape: int,
) -> str:
    o, m = "Orthanc", "Mekong"
    lines = [
        f"Run {info['date']} — `{info['command']}`",
        "",
        f"- Machine: {info['machine']}",
        f"- Versions: {info['orthanc']} (Debian); {info['dcmtk']}; Mekong {info['mekong']}; "
        f"{info['python']}",
        f"- Mekong settings: {info['mekong_config']}",
        "",
        "| Measure | Orthanc | Mekong | Mekong ÷ Orthanc | Target | Met |",
        "|---|---:|---:|---:|---|---|",
    ]
    targets = {"ct1": 1.3, "ct2": 1.5}
    for key, result in ingests[m].items():
        other = ingests[o][key]
        ratio = result.rate / other.rate
        target = targets.get(key)
        lines.append(
            f"| {result.label} | {_rate(other)} | {_rate(result)} | {ratio:.2f}× | "
            + (f"≥ {target}× | {_met(ratio >= target)} |" if target else "— | |")
        )
    for key, result in ingests[m].items():
        other = ingests[o][key]
        ms_m, ms_o = (
            1000 * result.cpu_seconds / result.files,
            1000 * other.cpu_seconds / other.files,
        )
        lines.append(
            f"| server CPU per instance, {result.label} | {ms_o:.1f} ms | {ms_m:.1f} ms | "
            f"{ms_m / ms_o:.2f}× | — | |"
        )
    if finds is not None:
        counts = ", ".join(f"{name} {n:,}" for name, n in index_sizes.items())
        for shape, title in SHAPES.items():
            mo, mm = finds.latencies[o][shape], finds.latencies[m][shape]
            avg = statistics.mean(finds.matches[m][shape])
            lines.append(
                f"| C-FIND study, {title} ({len(mm)} queries, {avg:.1f} matches avg): "
                f"median / p95 | {1000 * statistics.median(mo):.1f} / {1000 * pct(mo, 95):.1f} ms "
                f"| {1000 * statistics.median(mm):.1f} / {1000 * pct(mm, 95):.1f} ms | "
                f"{pct(mm, 95) / pct(mo, 95):.2f}× (p95) | — | |"
            )
        all_o = [x for v in finds.latencies[o].values() for x in v]
        all_m = [x for v in finds.latencies[m].values() for x in v]
        lines.append(
            f"| C-FIND study, all {len(all_m)} queries ({counts} instances indexed): "
            f"median / p95 | {1000 * statistics.median(all_o):.1f} / {1000 * pct(all_o, 95):.1f} ms"
            f" | {1000 * statistics.median(all_m):.1f} / {1000 * pct(all_m, 95):.1f} ms | "
            f"{pct(all_m, 95) / pct(all_o, 95):.2f}× (p95) | Mekong p95 ≤ 50 ms | "
            f"{_met(pct(all_m, 95) <= 0.050)} |"
        )
        eo, em = finds.echo[o], finds.echo[m]
        lines.append(
            f"| C-ECHO on the same association (client floor): median | "
            f"{1000 * statistics.median(eo):.2f} ms | {1000 * statistics.median(em):.2f} ms | "
            f"{statistics.median(em) / statistics.median(eo):.2f}× | — | |"
        )
        lines.append("")
        if finds.other_load > QUIET:
            load = 100 * finds.other_load
            lines.append(f"⚠ Other processes used {load:.0f}% of a core during the C-FIND queries.")
        if finds.mismatches:
            lines.append(f"⚠ {len(finds.mismatches)} queries matched differently, e.g. ")
            lines.extend(f"  - {text}" for text in finds.mismatches[:5])
        else:
            lines.append("Both servers returned the same number of matches for every query.")
    loads = [r.other_cpu_seconds / r.seconds for per in ingests.values() for r in per.values()]
    loads += [finds.other_load] if finds is not None else []
    lines += [
        "",
        f"Other processes on the machine used at most {100 * max(loads):.0f}% of one core during "
        "any timed phase.",
        "",
        "Throughput rows: higher is better; latency and CPU rows: lower is better. MB = 10⁶ bytes "
        "of Part 10 files sent. Server CPU = user + system time of the server process and its "
        "child processes during the run, per instance.",
    ]
    return "\n".join(lines) + "\n"


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--instances",
        type=int,
        default=1000,
        metavar="N",
        help="CT 512x512 instances per ingest run (default 1000)",
    )
    parser.add_argument(
        "--find-instances",
        type=int,
        default=100_000,
        metavar="M",
        help="small instances loaded before C-FIND (default 100000; 0 skips)",
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=80,
        metavar="Q",
        help="C-FIND queries of each of the 3 shapes per server (default 80)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"Markdown results (default {DEFAULT_OUT.relative_to(REPO)})",
    )
    parser.add_argument(
        "--tmp",
        type=Path,
        default=None,
        help="parent of the temporary folder (default: the system's)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        metavar="S",
        help="before each timed run, wait up to S seconds for other processes to go quiet",
    )
    parser.add_argument(
        "--mekong-config",
        type=Path,
        default=None,
        metavar="TOML",
        help="start Mekong with this configuration file (default: built-in defaults)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="also record Mekong storing with py-spy; summary in DIR",
    )
    args = parser.parse_args(argv)
    if args.instances < PARTS or args.find_instances < 0 or args.queries < 1:
        parser.error("--instances must be >= 4, --find-instances >= 0, --queries >= 1")
    return args


def _check_tools() -> None:
    for tool in (STORESCU, ORTHANC):
        if not os.access(tool, os.X_OK):
            raise BenchError(f"{tool} missing: make bench installs dcmtk and orthanc")


def _stop_all(servers: list[Server]) -> None:
    for proc in list(_children):
        with contextlib.suppress(OSError):
            proc.kill()
            proc.wait(10)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    _check_tools()
    _patience["seconds"] = args.quiet_wait
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    began = time.monotonic()
    info = facts(argv)
    info["mekong_config"] = (
        f"`{args.mekong_config}`: "
        + "; ".join(
            line.strip()
            for line in args.mekong_config.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        )
        if args.mekong_config
        else "built-in defaults (edge mode)"
    )
    root = Path(tempfile.mkdtemp(prefix="mekong-bench-", dir=args.tmp))
    servers: list[Server] = []
    try:
        print(f"data and servers under {root}", flush=True)
        t = time.monotonic()
        folders, small, studies = generate(
            root / "data", args.instances, args.find_instances, args.seed, args.profile is not None
        )
        print(f"generated in {time.monotonic() - t:.0f} s", flush=True)
        orthanc = Orthanc(root / "orthanc").start()
        servers.append(orthanc)
        mekong = Mekong(root / "mekong", args.mekong_config).start()
        servers.append(mekong)
        ordered: list[Server] = [orthanc, mekong]
        logs = root / "logs"
        logs.mkdir()

        n, m = args.instances, args.find_instances
        plan = [
            ("ct1", f"C-STORE {n:,} CT 512×512, 1 association", [folders["ct1"]]),
            ("ct2", f"C-STORE {n:,} CT 512×512, 4 associations", [[f] for f in folders["ct2"]]),
        ]
        if m:
            plan.append(
                (
                    "small",
                    f"C-STORE {m:,} small 16×16 (C-FIND fill), 4 associations",
                    [[f] for f in small],
                )
            )
        ingests: dict[str, dict[str, Ingest]] = {s.name: {} for s in ordered}
        for key, label, groups in plan:
            print(label, flush=True)
            for server in ordered:
                ingests[server.name][key] = ingest(server, groups, label, logs)

        finds = None
        sizes = {s.name: s.instances() for s in ordered}
        if m:
            print(f"C-FIND: {3 * args.queries} study-level queries per server; index {sizes}")
            queries = plan_queries(studies, args.queries, args.seed)
            settle()
            finds = run_queries(ordered, queries)
        table = report(info, ingests, finds, sizes, args.queries)
        if args.profile is not None:
            print("profiling Mekong (untimed)", flush=True)
            table += "\n" + "Profile (untimed, py-spy): see " + str(args.profile) + "\n"
            print(profile(mekong, folders["ctprof"], args.profile, logs))
        print()
        print(table)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
        print(f"written to {args.out}; total {time.monotonic() - began:.0f} s")
        failed = any(not r.ok for per in ingests.values() for r in per.values())
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", file=sys.stderr)
        return 130
    finally:
        _stop_all(servers)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
