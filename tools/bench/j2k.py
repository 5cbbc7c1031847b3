"""Lossless JPEG 2000 of a study, measured: what re-encoding before the uplink would save.

Each file is read with pydicom, its pixels encoded with pylibjpeg-openjpeg (JPEG 2000 Image
Compression, Lossless Only, 1.2.840.10008.1.2.4.90), written as Part 10, then decoded again and
compared with the original pixels. CPU time is the encoding process's own (``process_time``).
"""

from __future__ import annotations

import io
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.uid import JPEG2000Lossless

MB = 1_000_000


@dataclass
class J2kResult:
    files: int
    exact: int  # files whose decoded pixels equal the original's
    before: int  # bytes of the Part 10 files
    after: int  # bytes of the re-encoded Part 10 files
    encode_cpu: float
    decode_cpu: float
    wall: float
    workers: int

    @property
    def ratio(self) -> float:
        return self.before / self.after

    @property
    def encode_cpu_per_100mb(self) -> float:
        return self.encode_cpu / self.before * 100 * MB

    @property
    def decode_cpu_per_100mb(self) -> float:
        return self.decode_cpu / self.before * 100 * MB


def encode_lossless(data: bytes) -> bytes:
    """A Part 10 file's bytes, its pixel data re-encoded as lossless JPEG 2000."""
    ds = dcmread(io.BytesIO(data))
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _one(path: Path) -> tuple[int, int, float, float, bool]:
    """(bytes before, bytes after, encode CPU s, decode CPU s, pixel-exact)."""
    data = path.read_bytes()
    original = dcmread(io.BytesIO(data)).pixel_array
    start = time.process_time()
    encoded = encode_lossless(data)
    middle = time.process_time()
    decoded = dcmread(io.BytesIO(encoded)).pixel_array
    end = time.process_time()
    exact = decoded.dtype == original.dtype and bool(np.array_equal(decoded, original))
    return len(data), len(encoded), middle - start, end - middle, exact


def measure_j2k(folders: list[Path], workers: int | None = None) -> J2kResult:
    files = sorted(p for folder in folders for p in folder.rglob("*.dcm"))
    workers = workers or os.cpu_count() or 2
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_one, files, chunksize=8))
    wall = time.perf_counter() - start
    return J2kResult(
        files=len(files),
        exact=sum(r[4] for r in results),
        before=sum(r[0] for r in results),
        after=sum(r[1] for r in results),
        encode_cpu=sum(r[2] for r in results),
        decode_cpu=sum(r[3] for r in results),
        wall=wall,
        workers=workers,
    )
