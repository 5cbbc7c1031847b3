"""The Nuitka binary (``make test-binary``; skipped unless ``MEKONG_BINARY`` names it): it runs
in a clean environment, both modes start, its data files (console, viewer, migrations) are
inside it, and its codecs decode JPEG 2000 and JPEG-LS."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pydicom
import pytest
from alembic.script import ScriptDirectory
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from tests.conftest import dcmtk
from tests.dicomweb_support import Uids, http, image, pixel_spread, storescu
from tests.nodeproc import AE_TITLE, NodeProcess, mekong_command, mekong_env

pytestmark = pytest.mark.skipif(
    not os.environ.get("MEKONG_BINARY"), reason="MEKONG_BINARY (the built binary) not set"
)
MIGRATIONS = Path(__file__).resolve().parents[1] / "shared" / "db" / "migrations"
# pydicom's own test files, made by other implementations than the ones in the binary.
CODEC_FILES = {
    "j2k-lossless": ("MR_small_jp2klossless.dcm", "-xv"),
    "j2k-lossy": ("JPEG2000.dcm", "-xw"),
    "jpeg-ls-lossless": ("MR_small_jpeg_ls_lossless.dcm", "-xt"),
    "jpeg-ls-near-lossless": ("JPEGLSNearLossless_16.dcm", "-xu"),
}


@pytest.fixture(scope="module", params=["edge", "hub"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeProcess]:
    started = NodeProcess(tmp_path_factory.mktemp(request.param) / "data", mode=request.param)
    started.start(timeout=60)
    yield started
    assert started.stop() == 0, started.log()


def test_help_runs_without_python_environment(tmp_path: Path) -> None:
    env = mekong_env()
    assert "VIRTUAL_ENV" not in env and "PYTHONPATH" not in env and ".venv" not in env["PATH"]
    result = subprocess.run(
        mekong_command("--help"), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        mekong_command("serve", "--data", str(tmp_path), "--dicom-port", "99999"),
        capture_output=True, text=True, env=mekong_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["mekong: dicom.port must be 0..65535, got 99999"]


def test_mode_is_healthy(node: NodeProcess) -> None:
    health = node.health()
    assert health["status"] == "ok" and health["mode"] == node.mode, health
    assert "index" in health


def test_migrations_ran_to_head(node: NodeProcess) -> None:
    heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
    with closing(sqlite3.connect(node.data_dir / "index.db")) as db:
        applied = {row[0] for row in db.execute("SELECT version_num FROM alembic_version")}
    assert applied == heads


@pytest.mark.parametrize(
    ("path", "marker"),
    [
        ("/login", b"<form"),
        ("/console/static/console.css", b"{"),
        ("/console/static/htmx.min.js", b"htmx"),
        ("/m", b"<html"),
        ("/viewer/", b'id="root"'),
        ("/app-config.js", b"dicom-web"),
    ],
)
def test_console_and_viewer_are_served(node: NodeProcess, path: str, marker: bytes) -> None:
    reply = http(node, path, {"Accept-Language": "vi"})
    assert reply.status == 200, (reply.status, reply.body[:300])
    assert marker in reply.body


def test_console_speaks_vietnamese(node: NodeProcess) -> None:
    reply = http(node, "/login", {"Accept-Language": "vi"})
    assert "Đăng nhập".encode() in reply.body, reply.body[:500]


def test_capture_page_only_on_the_edge(node: NodeProcess) -> None:
    reply = http(node, "/capture/static/capture.js")
    assert reply.status == (200 if node.mode == "edge" else 404), reply.status


def test_echoscu(node: NodeProcess) -> None:
    result = dcmtk("echoscu", "-aec", AE_TITLE, "127.0.0.1", str(node.dicom_port))
    assert result.returncode == 0, result.stderr


def archivable(filename: str, out: Path) -> Path:
    """The test file with the study/series UIDs some of them lack; pixel data untouched."""
    ds = pydicom.dcmread(get_testdata_file(filename))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        if keyword not in ds:
            setattr(ds, keyword, generate_uid())
    ds.save_as(out / filename, enforce_file_format=True)
    return out / filename


@pytest.mark.parametrize("name", CODEC_FILES)
def test_node_decodes_compressed_pixels(node: NodeProcess, name: str, tmp_path: Path) -> None:
    """storescu sends the file in its own transfer syntax; the node renders it to a PNG,
    which needs its JPEG 2000 / JPEG-LS decoder."""
    filename, propose = CODEC_FILES[name]
    path = archivable(filename, tmp_path)
    storescu(node, [path], propose)
    uids = Uids.of(path)
    reply = http(node, f"{uids.path}/rendered", {"Accept": "image/png"})
    assert reply.status == 200, (reply.status, reply.body[:300])
    assert pixel_spread(image(reply.body)) > 0, name  # not a blank picture
