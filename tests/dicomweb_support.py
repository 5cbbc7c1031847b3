"""Helpers for the DICOMweb tests: a node loaded once per module, plain HTTP, strict multipart.

The independent client is ``dicomweb_client`` (``client(node)``); plain HTTP (``http``) is for
what a client library hides: status codes, headers, the exact bytes of a multipart body.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from dicomweb_client.api import DICOMwebClient
from PIL import Image

from tests.conftest import dcmtk
from tests.nodeproc import AE_TITLE, NodeProcess

EXPLICIT_LE = "1.2.840.10008.1.2.1"
# What OHIF's dicom-image-loader sends for every frame (unquoted, transfer-syntax=*).
OHIF_FRAMES_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"


@contextmanager
def loaded_node(root: Path, *batches: tuple[list[Path], str]) -> Iterator[NodeProcess]:
    """A node on fresh data under ``root``, each batch of files sent by DCMTK ``storescu``
    with its proposal flags (``-R``; ``-xv`` for J2K; ``-R -xn`` for H.264 video)."""
    node = NodeProcess(root / "data").start()
    try:
        for files, propose in batches:
            storescu(node, files, propose)
        yield node
    finally:
        node.stop()


def storescu(node: NodeProcess, files: list[Path], propose: str = "-R") -> None:
    result = dcmtk(
        "storescu", *propose.split(), "-aec", AE_TITLE, "127.0.0.1", str(node.dicom_port),
        *map(str, files),
    )  # fmt: skip
    assert result.returncode == 0 and "E:" not in result.stderr, result.stderr


def client(node: NodeProcess) -> DICOMwebClient:
    return DICOMwebClient(f"{node.url}/dicom-web")


@dataclass(frozen=True)
class Uids:
    study: str
    series: str
    sop: str

    @classmethod
    def of(cls, path: Path) -> Uids:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return cls(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))

    @property
    def study_path(self) -> str:
        return f"/dicom-web/studies/{self.study}"

    @property
    def series_path(self) -> str:
        return f"{self.study_path}/series/{self.series}"

    @property
    def path(self) -> str:
        return f"{self.series_path}/instances/{self.sop}"


# --- plain HTTP ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def media_type(self) -> str:
        return self.headers.get_content_type()


def http(
    node: NodeProcess,
    path: str,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    method: str | None = None,
) -> Reply:
    """One request; error statuses are returned, not raised. No automatic decompression."""
    request = urllib.request.Request(f"{node.url}{path}", data, headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


def assert_json_error(reply: Reply, status: int | tuple[int, ...]) -> None:
    """A 4xx the way Mekong promises it: JSON with a human-readable "error"."""
    expected = status if isinstance(status, tuple) else (status,)
    assert reply.status in expected, (reply.status, reply.body[:300])
    assert reply.media_type == "application/json", reply.headers["Content-Type"]
    assert isinstance(reply.json().get("error"), str) and reply.json()["error"]


def qido(node: NodeProcess, query: str, headers: dict[str, str] | None = None) -> list[dict]:
    reply = http(node, f"/dicom-web/{query}", headers)
    assert reply.status == 200, (reply.status, reply.body[:300])
    assert reply.media_type == "application/dicom+json", reply.headers["Content-Type"]
    return reply.json()


def index_counts(node: NodeProcess) -> dict[str, int]:
    return node.health()["index"]


# --- multipart/related, parsed strictly -------------------------------------------------------


@dataclass(frozen=True)
class Part:
    header_lines: list[str]
    body: bytes

    @property
    def content_type(self) -> str:
        for line in self.header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                return value.strip()
        return ""


def multipart_parts(reply: Reply) -> list[Part]:
    """The parts of a multipart/related reply; fails unless the body begins with ``--boundary``
    and ends with the closing delimiter (what OHIF's ``extractMultipart`` relies on)."""
    assert reply.media_type == "multipart/related", reply.headers["Content-Type"]
    boundary = reply.headers.get_param("boundary")
    assert isinstance(boundary, str) and boundary, reply.headers["Content-Type"]
    delimiter = b"--" + boundary.encode()
    body = reply.body
    assert body.startswith(delimiter + b"\r\n"), body[:80]
    closing = b"\r\n" + delimiter + b"--"
    end = body.rfind(closing)
    assert end > 0 and body[end + len(closing) :] in (b"", b"\r\n"), body[-80:]
    chunks = body[len(delimiter) + 2 : end].split(b"\r\n" + delimiter + b"\r\n")
    parts = []
    for chunk in chunks:
        head, separator, data = chunk.partition(b"\r\n\r\n")
        if chunk.startswith(b"\r\n"):  # a part without header lines
            head, separator, data = b"", b"\r\n", chunk[2:]
        assert separator, f"part without the blank line after its headers: {chunk[:80]!r}"
        parts.append(Part(head.decode("latin-1").split("\r\n") if head else [], data))
    return parts


# --- images ----------------------------------------------------------------------------------


def image(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


def pixel_spread(picture: Image.Image) -> float:
    """Standard deviation of the grey levels: a blank (single-colour) image gives 0."""
    return float(np.asarray(picture.convert("L"), dtype=np.float64).std())
