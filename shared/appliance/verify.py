"""``mekong verify``: is every blob the index needs present, with the bytes its name promises?

Run on a live node, on a restored data directory or after a disk scare (QOS-5, PACS-7.2). The
index is opened read-only and checked with SQLite's own ``integrity_check``; every needed blob
is re-hashed (in threads: hashlib releases the GIL), so a flipped byte is found, not just a
missing file.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from mekong.shared.appliance.references import needed_blobs_of, open_read_only
from mekong.shared.storage.blobs import blob_path
from mekong.shared.storage.files import file_digest


@dataclass
class VerifyReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)  # wrong size or wrong SHA-256
    index_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.damaged or self.index_problems)


def verify(data_dir: Path, threads: int | None = None) -> VerifyReport:
    index = data_dir / "index.db"
    if not index.is_file():
        return VerifyReport(index_problems=[f"no index at {index}"])
    with closing(open_read_only(index)) as connection:
        problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        needed = needed_blobs_of(connection)
    report = VerifyReport(index_problems=[p for p in problems if p != "ok"])
    blobs = data_dir / "blobs"
    with ThreadPoolExecutor(threads or os.cpu_count() or 2) as pool:
        states = pool.map(lambda item: _blob_state(blobs, *item), needed.items())
        for (digest, _size), state in zip(needed.items(), states, strict=True):
            report.checked += 1
            if state == "missing":
                report.missing.append(digest)
            elif state == "damaged":
                report.damaged.append(digest)
    return report


def _blob_state(blobs: Path, digest: str, size: int) -> str:
    path = blob_path(blobs, digest)
    try:
        if path.stat().st_size != size:
            return "damaged"
        return "ok" if file_digest(path) == digest else "damaged"
    except FileNotFoundError:
        return "missing"


def describe(report: VerifyReport, limit: int = 20) -> str:
    lines = [f"checked {report.checked} blobs"]
    for label, items in (("missing", report.missing), ("damaged", report.damaged)):
        if items:
            lines.append(f"{len(items)} {label}: " + " ".join(items[:limit]))
    lines += [f"index: {problem}" for problem in report.index_problems[:limit]]
    lines.append("OK" if report.ok else "FAILED")
    return "\n".join(lines)
