"""Fetch the prebuilt OHIF viewer (npm package @ohif/app, pinned) into build/ohif/.

Standard library only: `make setup` runs it with the system python3 before the venv matters, on
machines without node or npm. Steps: download the npm tarball into build/cache/ (kept, so a
second set-up needs no network), check it against the pinned sha512 integrity, extract
`package/dist` into a temporary folder next to build/ohif/ without `ort/` (onnxruntime for the
optional AI tool, 136 MB) and without `*.map`, copy `package/LICENSE` as `LICENSE.OHIF`,
gzip the compressible files once (`.gz` siblings the HTTP server sends to clients that accept
gzip), write the stamp, then rename the folder into place. A run that finds the stamp of this
version and integrity does nothing.

Exit status 0 when the viewer is in place, 1 with one line on stderr when it cannot be.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

PACKAGE = "@ohif/app"
# 3.13.x bundles shepherd.js 15 (AGPL-3.0 or commercial); 3.12.10 bundles 13.0.3 (MIT).
VERSION = "3.12.10"
URL = f"https://registry.npmjs.org/{PACKAGE}/-/app-{VERSION}.tgz"
# dist.integrity of https://registry.npmjs.org/@ohif%2fapp/3.12.10, checked against a download
INTEGRITY = (
    "sha512-0kuF66Mq9c9dMD++bUsTjMrJpXJwaZhz9B4uS244Daw"
    "AjSkTwIYFU93pxPuRUQixaRi7QAHlF3Fe1qudBlZrmA=="
)
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEST = ROOT / "build" / "ohif"
DEFAULT_CACHE = ROOT / "build" / "cache"
STAMP = ".mekong-viewer.json"
LICENSE_NAME = "LICENSE.OHIF"
PRUNED_DIRS = ("ort",)
PRUNED_SUFFIXES = (".map",)
GZIP_SUFFIXES = (".js", ".css", ".json", ".html", ".wasm", ".svg", ".webapp", ".xml")
GZIP_MIN_SIZE = 1024
_DIST = "package/dist/"


class FetchError(Exception):
    """The viewer cannot be installed; the message says why and what to do."""


def accept_version(version: str) -> None:
    """Only the 3.12 line is accepted: 3.13 and later bundle AGPL code."""
    parts = version.split(".")
    if parts[:2] != ["3", "12"]:
        raise FetchError(
            f"{PACKAGE} {version} refused: only 3.12.x is allowed (3.13+ has AGPL code)"
        )


accept_version(VERSION)


def fetch(
    dest: Path = DEFAULT_DEST,
    cache_dir: Path = DEFAULT_CACHE,
    url: str = URL,
    integrity: str = INTEGRITY,
) -> bool:
    """Make `dest` hold the pruned dist of the pinned version; True if anything was done."""
    if stamp_matches(dest, integrity):
        return False
    tarball = cache_dir / url.rsplit("/", 1)[-1]
    if not tarball.is_file():
        download(url, tarball)
    verify(tarball, integrity)
    install(tarball, dest, integrity)
    return True


def stamp_matches(dest: Path, integrity: str) -> bool:
    try:
        stamp = json.loads((dest / STAMP).read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("version") == VERSION and stamp.get("integrity") == integrity


def download(url: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise FetchError(f"download of {url} failed: {exc}") from None
    os.replace(partial, target)


def integrity_of(path: Path) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def verify(tarball: Path, integrity: str) -> None:
    if not integrity.startswith("sha512-"):
        raise FetchError(f"expected a sha512 integrity string, got {integrity!r}")
    actual = integrity_of(tarball)
    if actual != integrity:
        raise FetchError(
            f"integrity mismatch for {tarball}: expected {integrity}, got {actual}; "
            "refusing it (delete the file to download it again)"
        )


def install(tarball: Path, dest: Path, integrity: str) -> None:
    """Extract into a temporary sibling of `dest`, then swap it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".ohif-", dir=dest.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the node may run as another user
    try:
        version = extract(tarball, work)
        accept_version(version)
        if version != VERSION:
            raise FetchError(f"{tarball} holds {PACKAGE} {version}, expected {VERSION}")
        compress_all(work)
        stamp = {"package": PACKAGE, "version": version, "integrity": integrity}
        (work / STAMP).write_text(json.dumps(stamp) + "\n")
        swap_into_place(work, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def extract(tarball: Path, work: Path) -> str:
    """Write the kept members of package/dist (and the licence) under `work`; return the
    version named by package/package.json. Only regular files are written, by hand, so
    links and special files in the archive cannot point outside `work`."""
    manifest: dict = {}
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                if member.name == "package/package.json":
                    manifest = json.load(archive.extractfile(member))  # type: ignore[arg-type]
                elif member.name == "package/LICENSE":
                    _write(archive, member, work / LICENSE_NAME)
                elif (relative := kept_path(member.name)) is not None:
                    _write(archive, member, work / relative)
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise FetchError(f"{tarball} is not a readable npm tarball: {exc}") from None
    if manifest.get("name") != PACKAGE:
        raise FetchError(f"{tarball} is not {PACKAGE} (package.json name {manifest.get('name')!r})")
    return str(manifest.get("version"))


def kept_path(name: str) -> str | None:
    """Path below dist/ for a member to keep, None for one to drop."""
    if not name.startswith(_DIST):
        return None
    relative = name[len(_DIST) :]
    parts = relative.split("/")
    if not relative or any(p in ("", ".", "..") for p in parts) or relative.startswith("/"):
        return None
    if parts[0] in PRUNED_DIRS or relative.endswith(PRUNED_SUFFIXES):
        return None
    return relative


def _write(archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    source = archive.extractfile(member)
    assert source is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    with source, open(target, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


def compress_all(root: Path) -> None:
    """gzip -9 siblings for compressible files, kept only when they save at least 10 %."""
    for path in sorted(root.rglob("*")):
        if not path.is_file() or not path.name.endswith(GZIP_SUFFIXES):
            continue
        data = path.read_bytes()
        if len(data) < GZIP_MIN_SIZE:
            continue
        packed = gzip.compress(data, compresslevel=9, mtime=0)
        if len(packed) <= 0.9 * len(data):
            path.with_name(path.name + ".gz").write_bytes(packed)


def swap_into_place(work: Path, dest: Path) -> None:
    """Rename `work` to `dest`; an older `dest` is moved aside first and removed after."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=".ohif-old-", dir=dest.parent))
        os.replace(dest, old / "ohif")
    os.replace(work, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="viewer folder")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="tarball cache")
    parser.add_argument("--url", default=URL, help="tarball URL (default: the npm registry)")
    parser.add_argument("--integrity", default=INTEGRITY, help="expected sha512-... string")
    args = parser.parse_args(argv)
    try:
        done = fetch(args.dest, args.cache_dir, args.url, args.integrity)
    except FetchError as exc:
        print(f"fetch_viewer: {exc}", file=sys.stderr)
        return 1
    state = "installed" if done else "already installed"
    print(f"fetch_viewer: {PACKAGE} {VERSION} {state} in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
