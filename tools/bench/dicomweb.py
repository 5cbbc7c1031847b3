"""DICOMweb benchmark: a Mekong node against Orthanc + its DICOMweb plugin, side by side.

    .venv/bin/python -m tools.bench.dicomweb [--small N] [--seconds S] [--out FILE]

Loads the same data into both (with DCMTK storescu): one CT series of 250 instances 512x512
16-bit and N small instances in studies of 5. Then, for each request kind in turn, Orthanc first,
after a warm-up, over keep-alive connections: QIDO-RS latency (PatientID, PatientName prefix),
the series' ``/metadata`` (gzip, as a browser asks), the whole series as WADO-RS (MB/s), and
single frames with OHIF's Accept header on 1 and 6 connections (frames/s). Every response is
checked (status, multipart framing, the full 524,288-byte frame, counts), so an error never counts
as a fast answer. Prints a Markdown table, ratios > 1 meaning Mekong is better, and writes it to
``--out``. Each connection is a client process of its own (``tools.bench.httpload``) whose CPU is
measured; docs/benchmarks.md has the results and the reasoning.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pydicom

from tools.bench import dimse
from tools.bench.dimse import QUIET, STORESCU, settle
from tools.bench.httpload import CheckError, Connection, Headers, Load, load
from tools.bench.servers import ORTHANC, Mekong, Orthanc, Server
from tools.bench.synthetic import BenchError, Study, plan_small_studies, write_ct_series
from tools.bench.synthetic import write_small_part as write_small

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tools" / "bench" / "results" / "dicomweb.md"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"  # Debian orthanc-dicomweb
CT_INSTANCES = 250
FRAME_BYTES = 512 * 512 * 2
PARALLEL = 6  # connections a browser opens per host (OHIF's pattern)
STUDY_SIZE = 5  # small instances per study, so QIDO has many studies to search
ACCEPT_JSON = {"Accept": "application/dicom+json"}
ACCEPT_META = {**ACCEPT_JSON, "Accept-Encoding": "gzip"}
ACCEPT_SERIES = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
# OHIF's dicom-image-loader, verbatim (unquoted type):
ACCEPT_FRAME = {"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"}
OHIF_QIDO = "limit=101&offset=0&fuzzymatching=false&includefield=00081030,00080060"


def orthanc_settings(metadata: str) -> dict[str, object]:
    """Orthanc's fastest documented settings for this workload (docs/benchmarks.md says why)."""
    return {
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "StudiesMetadata": metadata,
            "SeriesMetadata": metadata,
        },
        "StorageAccessOnFind": "Never",  # QIDO from the index only: "fastest mode"
        "MaximumStorageCacheSize": 1024,  # MB; the CT series (131 MB) stays in Orthanc's cache
    }


# --- what a right answer is ------------------------------------------------------------------


def _boundary(headers: Headers) -> bytes:
    content_type = headers.get(b"content-type", b"")
    found = re.search(rb'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith(b"multipart/related") or not found:
        raise CheckError(f"not multipart/related with a boundary: {content_type!r}")
    return b"--" + found.group(1)


def check_frame(headers: Headers, body: bytes) -> int:
    """One part holding exactly the 512x512x16-bit frame."""
    delimiter = _boundary(headers)
    head_end = body.find(b"\r\n\r\n", 0, 4096)
    if not body.startswith(delimiter + b"\r\n") or head_end < 0:
        raise CheckError("body does not open with the boundary and a part header")
    if b"content-type: application/octet-stream" not in body[:head_end].lower():
        raise CheckError(f"part header is {body[: head_end + 4]!r}")
    if not body.startswith(b"\r\n" + delimiter, head_end + 4 + FRAME_BYTES):
        raise CheckError(f"frame is not {FRAME_BYTES} bytes ({len(body)}-byte body)")
    return 1


def check_series(headers: Headers, body: bytes) -> int:
    """Every instance of the CT series as a Part 10 part."""
    delimiter = _boundary(headers)
    parts = body.count(delimiter + b"\r\n")
    if parts != CT_INSTANCES or body.count(b"DICM") < parts or delimiter + b"--" not in body:
        raise CheckError(f"{parts} parts, {body.count(b'DICM')} DICM prefixes")
    return parts


def json_body(headers: Headers, body: bytes) -> list:
    if headers.get(b"content-encoding", b"gzip") != b"gzip":
        raise CheckError(f"unexpected Content-Encoding {headers[b'content-encoding']!r}")
    items = json.loads(gzip.decompress(body) if b"content-encoding" in headers else body)
    if not isinstance(items, list):
        raise CheckError("not a JSON array")
    return items


def check_json(headers: Headers, body: bytes) -> int:
    """A PS3.18 JSON array; its length (QIDO-RS: the number of matches)."""
    return len(json_body(headers, body))


def check_metadata(headers: Headers, body: bytes) -> int:
    if (count := check_json(headers, body)) != CT_INSTANCES:
        raise CheckError(f"metadata of {count} instances")
    return count


# --- data --------------------------------------------------------------------------------------


@dataclass
class Data:
    ct: Path
    small: list[Path]
    studies: list[Study]
    study_uid: str = ""
    series_uid: str = ""
    sop_uids: list[str] = field(default_factory=list)
    first_frame: bytes = b""

    def series_path(self) -> str:
        return f"/dicom-web/studies/{self.study_uid}/series/{self.series_uid}"

    def frame_paths(self) -> list[str]:
        return [f"{self.series_path()}/instances/{sop}/frames/1" for sop in self.sop_uids]


def generate(root: Path, small: int, seed: int) -> Data:
    data = Data(root / "ct", [root / f"small{k}" for k in range(4)], [])
    data.studies = plan_small_studies(small, seed, STUDY_SIZE)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        jobs = [pool.submit(write_ct_series, data.ct, CT_INSTANCES, seed + 1, 1)]
        jobs += [
            pool.submit(write_small, folder, data.studies[k::4], seed)
            for k, folder in enumerate(data.small)
        ]
        for job in jobs:
            job.result()
    files = sorted(data.ct.glob("*.dcm"))
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    data.study_uid, data.series_uid = headers[0].StudyInstanceUID, headers[0].SeriesInstanceUID
    order = sorted(range(len(files)), key=lambda i: int(headers[i].InstanceNumber))
    data.sop_uids = [headers[i].SOPInstanceUID for i in order]
    data.first_frame = pydicom.dcmread(files[order[0]]).PixelData
    return data


def qido_paths(studies: list[Study], n: int = 50) -> dict[str, list[str]]:
    """Up to ``n`` distinct PatientID and PatientName-prefix searches in OHIF's form. The
    prefix is sent with a literal ``^``: Orthanc 1.10 does not decode ``%5E`` in a query."""
    patients = list({s.patient.patient_id: s.patient for s in studies}.values())[:n]
    prefixes = sorted({f"{p.family}^{p.middle}*" for p in patients})
    return {
        "PatientID": [f"/dicom-web/studies?PatientID={p.patient_id}&{OHIF_QIDO}" for p in patients],
        "PatientName": [f"/dicom-web/studies?PatientName={x}&{OHIF_QIDO}" for x in prefixes],
    }


def verify(server: Server, data: Data, auth: dict[str, str]) -> dict:
    """Before timing: the server lists the CT series' instances and returns frame 1 of the
    first instance byte for byte. Describes its series metadata and the first request for it."""
    conn = Connection(urlsplit(server.url).port or 80)

    def get(path: str, headers: dict[str, str]) -> tuple[Headers, bytes]:
        status, response_headers, body = conn.get(conn.request(path, {**headers, **auth}))
        if status != 200:
            raise BenchError(f"{server.name}: GET {path} answered {status}: {body[:200]!r}")
        return response_headers, body

    found = {
        item["00080018"]["Value"][0]
        for item in json_body(*get(data.series_path() + "/instances", ACCEPT_JSON))
    }
    if set(data.sop_uids) != found:
        raise BenchError(f"{server.name} lists {len(found)} of the CT series' instances")
    headers, body = get(data.frame_paths()[0], ACCEPT_FRAME)
    if check_frame(headers, body) and data.first_frame not in body:
        raise BenchError(f"{server.name}: frame 1 differs from the stored pixel data")
    start = time.perf_counter()
    headers, body = get(data.series_path() + "/metadata", ACCEPT_META)
    cold, first = time.perf_counter() - start, json_body(headers, body)[0]
    conn.close()
    return {
        "cold_ms": 1000 * cold,
        "attributes": len(first),
        "bulkdata": "yes" if "BulkDataURI" in first.get("7FE00010", {}) else "no",
        "pixel_module": "yes" if {"00280010", "00280100"} <= set(first) else "**no**",
        "size": f"{len(body) / 1000:,.0f} kB, Content-Encoding "
        + headers.get(b"content-encoding", b"none").decode(),
    }


# --- the run -----------------------------------------------------------------------------------


def measure(
    servers: list[Server], auth: dict[str, dict[str, str]], data: Data, args: argparse.Namespace
) -> dict[str, dict]:
    """Each request kind in turn, for each server (Orthanc first): an untimed warm-up, a wait
    for a quiet machine, the timed run. Returns {server: {kind: Load}}."""
    frames, series, qido = data.frame_paths(), data.series_path(), qido_paths(data.studies)
    plan = [  # kind, paths, headers, check, warm-up requests, timed run
        ("qido PatientID", qido["PatientID"], ACCEPT_JSON, check_json, 10, {"count": args.queries}),
        ("qido PatientName", qido["PatientName"], ACCEPT_JSON, check_json, 10,
         {"count": args.queries}),
        ("metadata", [series + "/metadata"], ACCEPT_META, check_metadata, 3,
         {"count": args.metadata}),
        ("series", [series], ACCEPT_SERIES, check_series, 1, {"count": args.series}),
        ("frames first", frames, ACCEPT_FRAME, check_frame, 0, {}),  # each once, as a viewer
        ("frames x1", frames, ACCEPT_FRAME, check_frame, 0, {"seconds": args.seconds}),
        (f"frames x{PARALLEL}", frames, ACCEPT_FRAME, check_frame, 0,
         {"seconds": args.seconds, "connections": PARALLEL}),
    ]  # fmt: skip
    results: dict[str, dict[str, Load]] = {server.name: {} for server in servers}
    for kind, paths, accept, check, warmup, timed in plan:
        for server in servers:
            headers = {**accept, **auth[server.name]}
            if warmup:
                load(server, paths, headers, check, count=warmup)
            settle()
            r = load(server, paths, headers, check, **{"count": len(paths), **timed})
            results[server.name][kind] = r
            print(
                f"  {server.name:8s}{kind:17s}{r.requests:5d} req, {r.seconds:6.2f} s: "
                f"{r.rate:7.1f}/s, median {r.ms(50):6.1f} ms, p95 {r.ms(95):6.1f} ms; % of a "
                f"core: server {100 * r.server_cpu / r.seconds:3.0f}, client "
                f"{100 * r.client_cpu / r.seconds:3.0f}, other {100 * r.other_load:3.0f}"
                + (f"; {len(r.errors)} ERRORS, e.g. {r.errors[0]}" if r.errors else ""),
                flush=True,
            )
    return results


# --- report ------------------------------------------------------------------------------------


def _flags(r: Load) -> str:
    text = f" ⚠ {len(r.errors)} errors" if r.errors else ""
    if r.other_load > QUIET:
        text += f" (⚠ other load {100 * r.other_load:.0f}%)"
    return text


def _median_p95(r: Load) -> str:
    return f"{r.ms(50):.1f} / {r.ms(95):.1f} ms"


def _throughput(r: Load) -> str:
    return f"{r.ms(50) / 1000:.2f} s · {r.nbytes / r.requests / r.ms(50) / 1000:.0f} MB/s"


def _frames(r: Load) -> str:
    return f"{r.rate:.0f} frames/s ({r.ms(50):.1f} ms)"


def report(info: dict[str, str], res: dict[str, dict[str, Load]], meta: dict) -> str:
    m, o = res["Mekong"], res["Orthanc"]
    lines = [
        f"Run {info['date']} — `{info['command']}`",
        "",
        f"- Machine: {info['machine']}",
        f"- Versions: {info['orthanc']} (Debian) with DICOMweb plugin {info['plugin']}; "
        f"Mekong {info['mekong']}; {info['python']}, aiohttp {aiohttp.__version__}",
        f"- Settings: {info['settings']}",
        f"- Data: {info['data']}",
        "",
        "| Measure | Mekong | Orthanc | Mekong advantage | Target | Met |",
        "|---|---:|---:|---:|---|---|",
    ]

    def add(title: str, cells: list[str], advantage: str, target: str = "—", met=None) -> None:
        status = "" if met is None else "yes" if met else "**no**"
        lines.append(f"| {title} | {' | '.join(cells)} | {advantage} | {target} | {status} |")

    def measured(kind: str, text: Callable[[Load], str]) -> list[str]:
        return [text(r[kind]) + _flags(r[kind]) for r in (m, o)]

    def faster(kind: str) -> str:  # latency: Orthanc ÷ Mekong, at the median and at p95
        return " / ".join(f"{o[kind].ms(p) / m[kind].ms(p):.2f}×" for p in (50, 95))

    for shape, example in (("PatientID", "VN1000123"), ("PatientName", "NGUYEN^VAN*")):
        kind = f"qido {shape}"
        title = f"QIDO-RS `/studies?{shape}={example}&limit=101…`"
        matches = statistics.mean(m[kind].shares[0].counts)
        title += f" ({m[kind].requests} requests, {matches:.1f} matches avg): median / p95"
        add(title, measured(kind, _median_p95), faster(kind))
    requests, p95 = m["metadata"].requests, m["metadata"].ms(95)
    title = f"Series `/metadata`, {CT_INSTANCES} instances, gzip, warm ({requests} requests)"
    add(
        title,
        measured("metadata", _median_p95),
        faster("metadata"),
        "Mekong p95 ≤ 20 ms",
        p95 <= 20,
    )
    cold = [meta[name]["cold_ms"] for name in ("Mekong", "Orthanc")]
    title = "Series `/metadata`: first request after loading (server caches cold)"
    add(title, [f"{ms:.0f} ms" for ms in cold], f"{cold[1] / cold[0]:.2f}×")
    title = f"Whole-series WADO-RS, {CT_INSTANCES} instances (median of {m['series'].requests})"
    add(title, measured("series", _throughput), faster("series").split(" / ")[0])
    for kind, how in (
        ("frames first", "first pass, each frame once, 1 connection"),
        ("frames x1", "1 keep-alive connection"),
        (f"frames x{PARALLEL}", f"{PARALLEL} keep-alive connections"),
    ):
        title = f"Single frame `…/frames/1`, OHIF's Accept, {how} (median latency)"
        target = ("Mekong ≥ 500 frames/s", m[kind].rate >= 500) if kind == "frames x1" else ()
        add(title, measured(kind, _frames), f"{m[kind].rate / o[kind].rate:.2f}×", *target)
    for kind in ("frames x1", f"frames x{PARALLEL}"):
        cpu = [1000 * r[kind].server_cpu / r[kind].requests for r in (m, o)]
        title = f"Server CPU per frame, {kind[8:]} connection(s)"
        add(title, [f"{ms:.2f} ms" for ms in cpu], f"{cpu[1] / cpu[0]:.2f}×")
    lines.append("")
    for name, desc in meta.items():
        lines.append(
            f"- {name} series metadata: {desc['attributes']} attributes per instance, pixel module "
            f"(Rows, BitsAllocated…): {desc['pixel_module']}, PixelData BulkDataURI: "
            f"{desc['bulkdata']}; {desc['size']}."
        )
    for name, r in res.items():
        cpu = ", ".join(
            f"{kind}: {100 * r[kind].client_cpu / r[kind].seconds:.0f}% of a core "
            f"({1000 * r[kind].client_cpu / r[kind].requests:.2f} ms per request)"
            for kind in ("frames x1", f"frames x{PARALLEL}")
        )
        lines.append(f"- Client CPU against {name}, {cpu}.")
    differ = [
        k for k in m if k.startswith("qido") and m[k].shares[0].counts != o[k].shares[0].counts
    ]
    lines.append(
        f"- ⚠ Match counts differ: {', '.join(differ)}."
        if differ
        else "- Both servers returned the same number of matches for every QIDO-RS search."
    )
    loads = [r.other_load for per in res.values() for r in per.values()]
    errors = sum(len(r.errors) for per in res.values() for r in per.values())
    lines += [
        f"- Other processes on the machine used at most {100 * max(loads):.0f}% of one core "
        f"during any timed run; {errors} failed responses in total.",
        "",
        "Mekong advantage: Orthanc ÷ Mekong for times, Mekong ÷ Orthanc for rates; > 1 means "
        "Mekong is better. MB = 10⁶ bytes of response body. Server CPU = user + system time of "
        "the server process and its children during the run.",
    ]
    return "\n".join(lines) + "\n"


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--small", type=int, default=2000, metavar="N", help="small instances for QIDO (2000)")
    add("--queries", type=int, default=200, metavar="Q", help="QIDO requests per shape (200)")
    add("--metadata", type=int, default=50, metavar="R", help="timed /metadata requests (50)")
    add("--series", type=int, default=5, metavar="R", help="timed whole-series retrievals (5)")
    add("--seconds", type=float, default=10.0, metavar="S", help="each frame run lasts S s (10)")
    modes = ["MainDicomTags", "Full", "Extrapolate"]
    add("--orthanc-metadata", default=modes[0], choices=modes, help="Orthanc's metadata mode")
    add("--auth", default="session", choices=["session", "token", "none"], help="how clients "
        "authenticate to Mekong: a signed-in session cookie (default, as OHIF), an API token, "
        "nothing (trusted loopback); Orthanc then gets HTTP Basic, Basic, nothing")  # fmt: skip
    add("--mekong-config", type=Path, default=None, metavar="TOML", help="Mekong config file")
    add("--out", type=Path, default=DEFAULT_OUT, help="Markdown results file")
    add("--tmp", type=Path, default=None, help="parent of the temporary folder")
    add("--seed", type=int, default=0)
    add("--quiet-wait", type=float, default=120.0, metavar="S", help="wait for quiet (120 s)")
    add("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.small < 10 * STUDY_SIZE or min(args.queries, args.metadata, args.series) < 1:
        parser.error(f"--small must be >= {10 * STUDY_SIZE}; --queries, --metadata, --series >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    for tool in (STORESCU, ORTHANC, PLUGIN):
        if not os.path.exists(tool):
            raise BenchError(f"{tool} missing: make bench-web installs dcmtk, orthanc(-dicomweb)")
    dimse._patience["seconds"] = args.quiet_wait
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated (SIGTERM): stopping the servers"))
    began = time.monotonic()
    info = dimse.facts(argv)
    info["command"] = " ".join([".venv/bin/python -m tools.bench.dicomweb", *argv]).strip()
    root = Path(tempfile.mkdtemp(prefix="mekong-benchweb-", dir=args.tmp))
    servers: list[Server] = []
    try:
        print(f"data and servers under {root}", flush=True)
        data = generate(root / "data", args.small, args.seed)
        settings = orthanc_settings(args.orthanc_metadata)
        user = ("bench", "Bench#7vQx!2026") if args.auth != "none" else None
        orthanc = Orthanc(root / "orthanc", [PLUGIN], settings, user).start()
        servers.append(orthanc)
        mekong = Mekong(root / "mekong", args.mekong_config, args.auth == "none").start()
        servers.append(mekong)
        auth = {"Orthanc": orthanc.credentials, "Mekong": mekong.credentials(args.auth)}
        info["plugin"] = orthanc._get("/plugins/dicom-web").get("Version", "?")
        how = {"session": "a radiologist's session cookie (signed in via /api/auth/login)",
               "token": "a radiologist's API token (Bearer)", "none": "no credentials "
               "(trusted loopback: anonymous admin)"}[args.auth]  # fmt: skip
        shown = {k: v for k, v in orthanc.settings.items() if k != "RegisteredUsers"}
        info["settings"] = (
            f"Orthanc `{json.dumps(shown)}`, otherwise as in the DIMSE runs; Mekong "
            + (f"`{args.mekong_config}`" if args.mekong_config else "built-in defaults (edge)")
            + f"; Mekong clients send {how}"
            + (", Orthanc clients HTTP Basic" if args.auth != "none" else "")
        )
        info["data"] = (
            f"one CT series of {CT_INSTANCES} instances 512×512 16-bit (Explicit VR LE) + "
            f"{args.small:,} small instances in {len(data.studies):,} studies of "
            f"{len({s.patient.patient_id for s in data.studies}):,} patients, loaded with storescu"
        )
        (root / "logs").mkdir()
        groups = [[data.ct]] + [[folder] for folder in data.small if folder.exists()]
        for server in servers:
            stored = dimse.ingest(server, groups, "load", root / "logs", wait=False)
            if not stored.ok:
                raise BenchError(f"{server.name} did not store everything: {stored.errors}")
        meta = {server.name: verify(server, data, auth[server.name]) for server in servers}
        results = measure(servers, auth, data, args)
        table = report(info, results, meta)
        print()
        print(table)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
        print(f"written to {args.out}; total {time.monotonic() - began:.0f} s")
        return 1 if any(r.errors for per in results.values() for r in per.values()) else 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", file=sys.stderr)
        return 130
    finally:
        dimse._stop_all(servers)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
