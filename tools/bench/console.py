"""Console benchmark (issue 7, QOS-2): N signed-in users on the waiting list and the study
search, with M studies in the index, load from a second process on loopback.

    .venv/bin/python -m tools.bench.console [--studies 100000] [--orders 3000] [--users 200]
                                            [--think 10 5 3 2] [--seconds 60] [--saturation 30]

1. Seeds a fresh data folder (``tools.bench.console_seed``): the studies through the index
   writer, the orders through the RIS domain, the users with the account functions; then
   starts a node on it with authentication on (no trusted loopback).
2. Every user signs in with ``POST /api/auth/login`` and changes the one-time password, as
   the console does: a real server-side session each, cookie and CSRF token.
3. This process then runs one thread per user, each on its own keep-alive connection
   (``httpload.Connection``), looping over the console's pages: the waiting list (with its
   unmatched-studies alert), its table filtered by room and today (the htmx refresh), the
   order detail (imaging history), the study search by name prefix, date range, modality
   and accession. Between pages a user thinks for an exponential time of mean ``--think``
   seconds (the QOS-2 scenario: N concurrent users; one timed run per value given).
   ``--saturation S`` adds a run of S seconds without thinking: the throughput the node
   reaches when every user waits only for the server.
4. Prints a Markdown table per run (median, p95, p99, requests per second per page, the
   fraction answered within 2 s) and writes it to ``--out``.

Issue 7 target: p95 ≤ 200 ms with 200 users and 100k studies; QOS-2: 90 % ≤ 2 s.
Orthanc has no console: there is nothing to compare with here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

from tools.bench.console_seed import ROOMS, Seeded, seed
from tools.bench.dimse import pct
from tools.bench.hl7 import revision
from tools.bench.httpload import Connection
from tools.bench.servers import CpuMeter, Mekong
from tools.bench.synthetic import FAMILIES, MODALITIES, BenchError

NEW_PASSWORD = "Sông-Cửu-Long-2026"
SLOW = 2.0  # QOS-2: 90 % of the responses within this


# --- signing in --------------------------------------------------------------------------------


def _post(url: str, body: dict, headers: dict[str, str]) -> tuple[str, dict]:
    headers = {"Content-Type": "application/json", **headers}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.headers.get("Set-Cookie", ""), json.load(response)
    except urllib.error.HTTPError as exc:
        raise BenchError(f"POST {url}: {exc.code} {exc.read()[:300]!r}") from None


def sign_in(base: str, name: str, password: str) -> dict[str, str]:
    """Log in, change the one-time password; the session cookie (what the browser sends)."""
    cookie, me = _post(f"{base}/api/auth/login", {"username": name, "password": password}, {})
    headers = {"Cookie": cookie.split(";")[0]}
    change = {"current_password": password, "new_password": NEW_PASSWORD}
    _post(f"{base}/api/auth/password", change, {**headers, "X-CSRF-Token": me["csrf"]})
    return headers


# --- what a user does ----------------------------------------------------------------------------


def pages(data: Seeded, rng: random.Random) -> list[tuple[str, str]]:
    """One round of a user: (page kind, path), with criteria drawn for this user."""
    study = rng.choice(data.studies)
    family = rng.choices(list(FAMILIES), weights=list(FAMILIES.values()))[0].lower()
    name = f"{family} {study.patient.middle.lower()[:2]}" if rng.random() < 0.5 else family
    start = rng.choice(data.studies).date
    end = f"{start[:6]}{min(28, int(start[6:]) + 6):02d}"
    iso = lambda d: f"{d[:4]}-{d[4:6]}-{d[6:]}"  # noqa: E731
    room = rng.choice(ROOMS)
    accession = rng.choice(data.accessions)
    return [
        ("waiting list", "/orders"),
        ("waiting list: room, today", "/orders/table?" + urlencode(
            {"room": room, "date": iso(data.today), "name": "", "status": ""})),
        ("order detail", f"/orders/{quote(accession)}"),
        ("study search: name prefix", "/studies?" + urlencode({"name": name})),
        ("study search: date range", "/studies?" + urlencode(
            {"date_from": iso(start), "date_to": iso(end)})),
        ("study search: modality", "/studies?" + urlencode(
            {"modality": rng.choice(list(MODALITIES))})),
        ("study search: accession", "/studies?" + urlencode(
            {"accession": f"BV{2_000_000 + study.index}"})),
    ]  # fmt: skip


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    began: float = 0.0
    ended: float = 0.0

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)

    def fail(self, text: str) -> None:
        with self.lock:
            self.errors.append(text[:300])


@dataclass
class Run:
    """What every user thread of one timed run shares."""

    port: int
    data: Seeded
    think: float
    start: threading.Barrier
    out: Results


def user(run: Run, headers: dict[str, str], n: int) -> None:
    """One console user: a keep-alive connection, pages in turn, thinking in between."""
    rng, out = random.Random(n), run.out
    conn = Connection(run.port)
    left = lambda: max(0.0, out.ended - time.perf_counter())  # noqa: E731
    try:
        conn.get(conn.request("/orders", headers))  # opens the connection, untimed
        run.start.wait()
        if run.think:  # users do not all click at the same moment, nor on the same page
            time.sleep(min(rng.uniform(0, run.think), left()))
        skip = rng.randrange(len(pages(run.data, rng)))
        while True:
            for kind, path in pages(run.data, rng)[skip:]:
                if not left():
                    return
                visit(conn, headers, kind, path, out)
                if run.think:
                    time.sleep(min(10 * run.think, rng.expovariate(1 / run.think), left()))
            skip = 0
    finally:
        conn.close()


def visit(conn: Connection, headers: dict[str, str], kind: str, path: str, out: Results) -> None:
    begun = time.perf_counter()
    try:
        status, _, body = conn.get(conn.request(path, headers))
    except OSError as exc:
        out.fail(f"{kind}: {exc!r}")
        conn.close()
        return
    elapsed = time.perf_counter() - begun
    if begun < out.began:
        return  # warm-up: the users are still spreading out over their rounds
    if status != 200 or b"</table>" not in body:
        out.fail(f"{kind} {path}: HTTP {status} {body[:120]!r}")
    else:
        out.add(kind, elapsed)


Measured = tuple[Results, float, float, tuple[float, ...]]


def run_load(node: Mekong, sessions: list[dict[str, str]], data: Seeded, think: float,
             seconds: float, warmup: float) -> Measured:  # fmt: skip
    """All users at once; timed for ``seconds`` after ``warmup`` seconds: (results, server CPU
    s, other CPU s, load average)."""
    out = Results(ended=float("inf"))
    run = Run(int(node.url.rsplit(":", 1)[1]), data, think,
              threading.Barrier(len(sessions) + 1), out)  # fmt: skip
    threads = [threading.Thread(target=user, args=(run, h, n), daemon=True)
               for n, h in enumerate(sessions)]  # fmt: skip
    for thread in threads:
        thread.start()
    out.began = float("inf")
    run.start.wait(timeout=300)
    time.sleep(warmup)
    meter = CpuMeter(node)
    out.began = time.perf_counter()
    out.ended = out.began + seconds
    for thread in threads:
        thread.join()
    out.ended = time.perf_counter()  # the deadline, and the requests then under way
    server_cpu, other_cpu = meter.stop()
    return out, server_cpu, other_cpu, os.getloadavg()


# --- report ---------------------------------------------------------------------------------------


def table(title: str, out: Results, server_cpu: float, other_cpu: float,
          loadavg: tuple[float, ...]) -> list[str]:  # fmt: skip
    window = out.ended - out.began
    everything = [x for values in out.latencies.values() for x in values]
    lines = [f"**{title}**", "",
             "| page | requests | req/s | median (ms) | p95 (ms) | p99 (ms) | ≤ 2 s |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for kind, values in [*out.latencies.items(), ("all pages", everything)]:
        if not values:
            continue
        fast = sum(v <= SLOW for v in values) / len(values)
        bold = "**" if kind == "all pages" else ""
        lines.append(
            f"| {bold}{kind}{bold} | {len(values)} | {len(values) / window:.1f} | "
            f"{1000 * statistics.median(values):.0f} | {bold}{1000 * pct(values, 95):.0f}{bold} | "
            f"{1000 * pct(values, 99):.0f} | {100 * fast:.1f} % |"
        )
    lines += [
        "",
        f"{window:.0f} s; errors: {len(out.errors)}"
        + (f" (first: {out.errors[0]})" if out.errors else "")
        + f"; node CPU {server_cpu / window:.2f} cores; other processes "
        f"{other_cpu / window:.2f} cores (this client included); load average (1/5/15 min) "
        f"at the end {loadavg[0]:.2f} / {loadavg[1]:.2f} / {loadavg[2]:.2f} on "
        f"{os.cpu_count()} CPUs.",
        "",
    ]
    return lines


def run(args: argparse.Namespace, tmp: Path) -> list[str]:
    began = time.perf_counter()
    data, users = asyncio.run(seed(tmp / "data", args.studies, args.orders, args.users,
                                   args.role, args.seed))  # fmt: skip
    seeding = time.perf_counter() - began
    node = Mekong(tmp / "data", trusted_loopback=False).start()
    try:
        load_before = os.getloadavg()
        with ThreadPoolExecutor(4) as pool:
            sessions = list(pool.map(lambda item: sign_in(node.url, *item), users.items()))
        lines = [
            f"Console benchmark, {time.strftime('%Y-%m-%d %H:%M')}, revision {revision()}, "
            f"{platform.node()}, Python {platform.python_version()}: {args.studies} studies, "
            f"{len(data.accessions)} orders, {len(sessions)} users ({args.role}) signed in; "
            f"seeding {seeding:.0f} s (studies {data.seconds['studies']:.0f} s, orders "
            f"{data.seconds['orders']:.0f} s); load average before the run "
            f"{load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}.",
            "",
        ]
        print("\n".join(lines), flush=True)
        for think in args.think:
            result = run_load(node, sessions, data, think, args.seconds, args.warmup)
            title = f"{len(sessions)} users, think time {think} s (mean, exponential)"
            lines += table(title, *result)
            print("\n".join(table(title, *result)), flush=True)
        if args.saturation:
            result = run_load(node, sessions, data, 0.0, args.saturation, args.warmup)
            title = f"{len(sessions)} users, no think time (saturation)"
            lines += table(title, *result)
            print("\n".join(table(title, *result)), flush=True)
    finally:
        node.stop()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools.bench.console", description=__doc__.split("\n")[0])
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1200)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--role", default="technician")
    parser.add_argument("--think", type=float, nargs="+", default=[10.0, 5.0, 3.0, 2.0],
                        help="mean seconds between pages; one timed run for each")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--saturation", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=15.0,
                        help="seconds of load before the timed window")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("tools/bench/results/console-latest.md"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mekong-bench-console-") as tmp:
        lines = run(args, Path(tmp))
    text = "\n".join(lines) + "\n"  # printed as it came
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
