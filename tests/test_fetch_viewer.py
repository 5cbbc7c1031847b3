"""tools/fetch_viewer.py on small hand-made npm tarballs: integrity refusal, pruning, version
guard, idempotence. No network: every tarball is already in the cache folder."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tools import fetch_viewer
from tools.fetch_viewer import FetchError

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "http://127.0.0.1:9/app-3.12.10.tgz"  # never contacted: the cache has the file
BUNDLE = "app.bundle.0123456789abcdef0123.js"


def npm_tarball(path: Path, version: str = fetch_viewer.VERSION, name: str = "@ohif/app") -> str:
    """A tarball shaped like `npm pack` output; returns its sha512 integrity string."""
    members = {
        "package/package.json": json.dumps({"name": name, "version": version}).encode(),
        "package/LICENSE": b"MIT License\nCopyright (c) 2018 Open Health Imaging Foundation\n",
        "package/README.md": b"readme",
        "package/dist/index.html": b"<!doctype html><div id=root></div>",
        f"package/dist/{BUNDLE}": b"console.log('viewer');\n" * 200,
        f"package/dist/{BUNDLE}.map": b"{}",
        "package/dist/ort/ort-wasm.wasm": b"\0asm" * 100,
        "package/dist/assets/logo.png": b"\x89PNG",
        "package/dist/../../escape.txt": b"outside",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for member_name, data in members.items():
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("package/dist/link.js")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    return fetch_viewer.integrity_of(path)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "tools" / "fetch_viewer.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_corrupted_cached_tarball_is_refused(tmp_path: Path) -> None:
    cache, dest = tmp_path / "cache", tmp_path / "ohif"
    cache.mkdir()
    (cache / f"app-{fetch_viewer.VERSION}.tgz").write_bytes(b"not the tarball npm published")
    result = run_cli("--cache-dir", str(cache), "--dest", str(dest), "--url", UNREACHABLE)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "integrity mismatch" in lines[0], result.stderr
    assert fetch_viewer.INTEGRITY in lines[0]
    assert not dest.exists()


def test_tarball_of_another_integrity_is_refused(tmp_path: Path) -> None:
    npm_tarball(tmp_path / "cache" / "app-3.12.10.tgz")  # well formed, but not the pinned bytes
    with pytest.raises(FetchError, match="integrity mismatch"):
        fetch_viewer.fetch(tmp_path / "ohif", tmp_path / "cache", UNREACHABLE)
    assert not (tmp_path / "ohif").exists()


def test_install_prunes_gzips_stamps_and_is_idempotent(tmp_path: Path) -> None:
    cache, dest = tmp_path / "cache", tmp_path / "ohif"
    integrity = npm_tarball(cache / "app-3.12.10.tgz")
    assert fetch_viewer.fetch(dest, cache, UNREACHABLE, integrity) is True
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert files == {
        "index.html", BUNDLE, f"{BUNDLE}.gz", "assets/logo.png", "LICENSE.OHIF",
        fetch_viewer.STAMP,
    }  # fmt: skip
    assert gzip.decompress((dest / f"{BUNDLE}.gz").read_bytes()) == (dest / BUNDLE).read_bytes()
    assert b"Open Health Imaging Foundation" in (dest / "LICENSE.OHIF").read_bytes()
    assert not (tmp_path / "escape.txt").exists()
    stamp = json.loads((dest / fetch_viewer.STAMP).read_text())
    assert stamp == {"package": "@ohif/app", "version": "3.12.10", "integrity": integrity}
    assert fetch_viewer.fetch(dest, cache, UNREACHABLE, integrity) is False
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


@pytest.mark.parametrize("version", ["3.13.2", "3.13.0-beta.24", "4.0.0"])
def test_version_other_than_3_12_is_refused(tmp_path: Path, version: str) -> None:
    cache = tmp_path / "cache"
    integrity = npm_tarball(cache / "app-3.12.10.tgz", version=version)
    with pytest.raises(FetchError, match="only 3.12.x is allowed"):
        fetch_viewer.fetch(tmp_path / "ohif", cache, UNREACHABLE, integrity)
    assert not (tmp_path / "ohif").exists()
    with pytest.raises(FetchError):
        fetch_viewer.accept_version(version)


def test_other_package_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    integrity = npm_tarball(cache / "app-3.12.10.tgz", name="@evil/app")
    with pytest.raises(FetchError, match="is not @ohif/app"):
        fetch_viewer.fetch(tmp_path / "ohif", cache, UNREACHABLE, integrity)


def test_pinned_version_and_integrity() -> None:
    assert fetch_viewer.VERSION == "3.12.10"
    assert fetch_viewer.URL == "https://registry.npmjs.org/@ohif/app/-/app-3.12.10.tgz"
    assert fetch_viewer.INTEGRITY.startswith("sha512-") and len(fetch_viewer.INTEGRITY) == 95
