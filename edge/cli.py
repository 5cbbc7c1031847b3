"""``mekong import`` and ``mekong capture``: support staff and scripts drive a running edge
node through its REST API (RIS-5.6, RIS-5.7, FEAT-2.2).

    mekong import PATH... --accession A [--device D] [--url URL] [--token T]
    mekong capture --source SRC --accession A (--seconds N | --snapshot) [--device D]

Each stored object's SOP Instance UID is printed on its own line. Exit status: 0 when every
object is stored, 1 when the node refused or failed one (the reason on stderr), 2 for a usage
or connection error. The token comes from ``--token`` or ``MEKONG_TOKEN`` (``mekong token
create``); the node from ``--url`` or ``MEKONG_URL`` (default http://127.0.0.1:8080).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"


class NodeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    imp = commands.add_parser("import", help="import JPEG/PNG/PDF/MP4 files into an order")
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    imp.add_argument("--accession", required=True)
    imp.add_argument("--device", default="", help="device name (series, kind of video)")
    _node_options(imp)
    imp.set_defaults(run=_import)
    cap = commands.add_parser("capture", help="record a clip or a snapshot into an order")
    cap.add_argument("--source", help="/dev/videoN, a stream URL or a video file")
    cap.add_argument("--accession", required=True)
    what = cap.add_mutually_exclusive_group(required=True)
    what.add_argument("--seconds", type=float, help="clip length")
    what.add_argument("--snapshot", action="store_true", help="one still picture")
    cap.add_argument("--device", default="", help="capture device (default: 'cli')")
    cap.add_argument("--kind", default="other", choices=["endoscopy", "ultrasound", "other"],
                     help="for a new device: which DICOM objects it makes")  # fmt: skip
    _node_options(cap)
    cap.set_defaults(run=_capture)


def _node_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("MEKONG_URL", DEFAULT_URL))
    parser.add_argument("--token", default=os.environ.get("MEKONG_TOKEN", ""))


def _import(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.paths:
        try:
            fields = {"accession": args.accession, "device": args.device}
            reply = _call(args, "POST", "/api/import", multipart=(path, fields))
        except NodeError as exc:
            print(f"mekong import: {path}: {exc}", file=sys.stderr)
            failed += 1
            if exc.status == 0:
                return 2
            continue
        except OSError as exc:
            print(f"mekong import: {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        for sop_uid in reply["sop_uids"]:
            print(sop_uid)
    return 1 if failed else 0


def _capture(args: argparse.Namespace) -> int:
    device = args.device or "cli"
    try:
        if args.source:
            _call(args, "PUT", f"/api/capture/{device}",
                  {"source": args.source, "kind": args.kind})  # fmt: skip
        if args.snapshot:
            reply = _call(args, "POST", f"/api/capture/{device}/snapshot",
                          {"accession": args.accession})  # fmt: skip
        else:
            reply = _record(args, device)
    except NodeError as exc:
        print(f"mekong capture: {exc}", file=sys.stderr)
        return 2 if exc.status == 0 else 1
    if not reply.get("sop_uid"):
        print(f"mekong capture: not stored: {reply.get('error', 'unknown error')}",
              file=sys.stderr)  # fmt: skip
        return 1
    print(reply["sop_uid"])
    return 0


def _record(args: argparse.Namespace, device: str) -> dict[str, Any]:
    body = {"accession": args.accession, "seconds": args.seconds}
    _call(args, "POST", f"/api/capture/{device}/start", body)
    deadline = time.monotonic() + args.seconds + 60
    while time.monotonic() < deadline:
        time.sleep(min(0.5, args.seconds / 4))
        if _call(args, "GET", f"/api/capture/{device}").get("recording") is None:
            break
    return _call(args, "POST", f"/api/capture/{device}/stop")  # answers once stored


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None,
          multipart: tuple[Path, dict[str, str]] | None = None) -> dict[str, Any]:  # fmt: skip
    headers = {"Accept": "application/json"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    data = None
    if multipart is not None:
        data, headers["Content-Type"] = _form(*multipart)
    elif body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(args.url.rstrip("/") + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=600) as reply:
            return json.load(reply)
    except urllib.error.HTTPError as exc:
        raise NodeError(exc.code, _message(exc)) from None
    except (urllib.error.URLError, ConnectionError) as exc:
        raise NodeError(0, f"cannot reach the node at {args.url}: {exc}") from None


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return f"{exc.code}: {json.load(exc)['error']}"
    except (ValueError, KeyError):
        return f"{exc.code}: {exc.reason}"


def _form(path: Path, fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: {kind}\r\n\r\n')  # fmt: skip
    parts += [head.encode("utf-8"), path.read_bytes(), f"\r\n--{boundary}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
