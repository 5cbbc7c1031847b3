"""Helpers for the edge tests: an edge node with capture devices and watch folders, orders,
stored objects read back from the blob store, dciodvfy."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

import pydicom
from pydicom.encaps import generate_fragments

from tests.nodeproc import NodeProcess

NAME = "Nguyễn^Thị Hồng Nhung"


def edge_config(
    path: Path, devices: list[dict[str, Any]], folders: list[dict[str, Any]]
) -> list[str]:
    """Write a TOML config (one DICOM process) with these devices and folders."""
    lines = ["[dicom]", "workers = 1"]
    for table, items in (("edge.capture_devices", devices), ("edge.watch_folders", folders)):
        for item in items:
            lines.append(f"[[{table}]]")
            lines += [
                f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in item.items()
            ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ["--config", str(path)]


def call(node: NodeProcess, method: str, path: str, body: Any = None, *,
         data: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 120) -> tuple[int, Any]:  # fmt: skip
    if body is not None:
        data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    request = urllib.request.Request(f"{node.url}{path}", data=data, method=method,
                                     headers=headers or {})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            raw = reply.read()
            kind = reply.headers.get("Content-Type", "")
            return reply.status, json.loads(raw) if "json" in kind else raw
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def new_order(node: NodeProcess, accession: str, modality: str = "ES") -> dict[str, Any]:
    body = {
        "patient": {"id": f"P{accession}", "issuer": "BVCR", "name": NAME,
                    "birth_date": "1980-01-15", "sex": "F"},
        "order": {"accession": accession, "placer_number": f"HIS-{accession}"},
        "procedure": {"description": "Nội soi dạ dày"},
        "steps": [{"modality": modality, "station_ae": "ES1", "start_date": "2026-11-26",
                   "start_time": "10:30"}],
    }  # fmt: skip
    status, order = call(node, "POST", "/api/orders", body)
    assert status == 201, order
    return order


def stored_path(node: NodeProcess, sop_uid: str) -> Path:
    with closing(sqlite3.connect(f"file:{node.data_dir / 'index.db'}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT digest FROM instance WHERE sop_uid = ?", (sop_uid,)).fetchone()
    assert row, f"{sop_uid} is not in the index"
    digest = row[0]
    return node.data_dir / "blobs" / digest[:2] / digest[2:4] / digest


def dciodvfy_errors(path: Path) -> list[str]:
    result = subprocess.run(["/usr/bin/dciodvfy", str(path)], capture_output=True, text=True,
                            errors="replace", timeout=120)  # fmt: skip
    return [line for line in (result.stdout + result.stderr).splitlines()
            if line.startswith("Error")]  # fmt: skip


def mp4_of(path: Path) -> bytes:
    ds = pydicom.dcmread(path)
    return b"".join(generate_fragments(ds.PixelData))


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, dict]:
    boundary = "mekongtestboundary"
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                  f"{value}\r\n".encode())  # fmt: skip
    out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
              f'filename="{filename}"\r\n\r\n'.encode())  # fmt: skip
    out.write(content + f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def wait_for(check, timeout: float = 60, step: float = 0.25):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not true within {timeout} s: {check}")
