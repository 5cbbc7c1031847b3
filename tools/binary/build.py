"""Build the ``mekong`` binary with Nuitka: ``onefile`` → ``dist/mekong``, ``standalone`` →
``dist/mekong.dist/mekong.bin``. Both builds share the inclusion rules below (docs/binary.md says
what breaks without each). Run with the project's venv: ``python -m tools.binary.build MODE``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
DIST = ROOT / "dist"
ENTRY = Path(__file__).with_name("entry.py")
EXE = "mekong.bin"
# The repo folders behind the package names (pyproject's package-dir); the editable install's
# import hook is invisible to Nuitka, so it compiles from a tree of links with the real layout.
PACKAGE_DIRS = {"shared": ROOT / "shared", "edge": ROOT / "edge", "central": ROOT / "central"}
SOURCE_TREE = BUILD / "binary-src"

# Pure-Python libraries shipped as bytecode instead of compiled to C: they run as fast as in
# the venv, and the build compiles a fraction of the C (SQLAlchemy alone was 42 % of it).
BYTECODE = (
    "aiohappyeyeballs", "aiohttp", "aiohttp_jinja2", "aiosignal", "aiosqlite", "alembic",
    "argon2", "attr", "attrs", "av", "babel", "certifi", "cffi", "charset_normalizer",
    "cryptography", "defusedxml", "fontTools", "fpdf", "frozenlist", "gdcm", "_gdcm", "hl7",
    "idna", "ifaddr", "jinja2", "jpeg_ls", "ldap3", "libjpeg", "mako", "markupsafe", "multidict",
    "numpy",
    "openjpeg", "PIL", "propcache", "pyasn1", "pydicom", "pylibjpeg", "pynetdicom", "pyzbar",
    "qrcode", "rle", "sqlalchemy", "typing_extensions", "watchdog", "yarl", "zeroconf",
)  # fmt: skip
# Libraries that read their own version or plugins from package metadata at import time (a
# compiled module gets the answer baked in at build time, bytecode asks at run time).
METADATA = (
    "alembic", "argon2-cffi", "attrs", "Mako", "MarkupSafe", "pydicom", "pyjpegls", "pylibjpeg",
    "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle", "pynetdicom", "SQLAlchemy",
)  # fmt: skip
NOFOLLOW = (
    # Test suites shipped inside the wheels (not "*.tests": jinja2.tests is Jinja's run time).
    "numpy.tests", "numpy.*.tests", "pynetdicom.tests", "pynetdicom.apps", "pylibjpeg.tests",
    "pylibjpeg.tools.tests", "openjpeg.tests", "libjpeg.tests", "rle.tests", "jpeg_ls.tests",
    "aiosqlite.tests", "greenlet.tests", "pyzbar.tests", "qrcode.tests", "*.testing",
    # Optional imports the node never uses: Mako's error highlighting (330 modules of C),
    # pydicom's test-file downloader, numpy's Fortran tools, Babel's extractor plugins.
    "pygments", "requests", "numpy.f2py", "numpy.distutils", "pkg_resources",
    "sqlalchemy.dialects.mysql", "sqlalchemy.dialects.oracle", "sqlalchemy.dialects.mssql",
    # Alembic runs the migrations from their .py files (raw dir below), never by module name.
    "mekong.shared.db.migrations",
)  # fmt: skip
# Babel ships ~800 locales; the console speaks Vietnamese and English (+ their "root" parent).
NO_DATA = (
    "babel/locale-data/[!erv]*", "babel/locale-data/e[!n]*", "babel/locale-data/r[!o]*",
    "babel/locale-data/ro[!o]*", "babel/locale-data/v[!i]*",
    "pydicom/data/test_files", "pydicom/data/charset_files",  # test data only
    "mekong/shared/console/babel.cfg", "mekong/shared/console/locales/*.pot", "*/__pycache__/*",
)  # fmt: skip


def onefile_flags() -> list[str]:
    return [
        # Unpacked once into ~/.cache/mekong/<version>-<build> and reused after, instead of into
        # a new temporary folder at every start. One folder per build: a new build never
        # rewrites the files of one that is still running.
        f"--onefile-tempdir-spec={{CACHE_DIR}}/mekong/{{VERSION}}-{build_id()}",
        # SIGTERM reaches the node as SIGINT (the same drain); its supervisor decides when to
        # kill it, not the launcher after 5 s.
        "--onefile-child-grace-time=infinity",
    ]


def build_id() -> str:
    """The commit, plus a digest of uncommitted changes: the same sources, the same id."""
    commit = git("rev-parse", "--short=12", "HEAD").decode().strip()
    changes = git("diff", "HEAD")
    return f"{commit}-{hashlib.sha256(changes).hexdigest()[:8]}" if changes else commit


def git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=True).stdout


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def nuitka_flags(mode: str, output: Path) -> list[str]:
    return [
        # Not "mekong": in the folder that name is the package directory of the data files.
        f"--mode={mode}", "--jobs=2", f"--output-dir={output}", f"--output-filename={EXE}",
        "--assume-yes-for-downloads", "--product-name=mekong", f"--product-version={version()}",
        *(onefile_flags() if mode == "onefile" else ()),
        # The mode packages and their route modules are imported by name at run time.
        *(f"--include-package=mekong.{name}" for name in PACKAGE_DIRS),
        "--include-package-data=mekong.shared", "--include-package-data=mekong.edge",
        f"--include-raw-dir={ROOT / 'shared/db/migrations'}=mekong/shared/db/migrations",
        f"--include-data-dir={BUILD / 'ohif'}=mekong/build/ohif",  # viewer.DEFAULT_DIR
        # `mekong install` reads the units through a link (appliance/systemd → systemd/), and
        # package data does not follow links to folders.
        f"--include-data-dir={ROOT / 'systemd'}=mekong/shared/appliance/systemd",
        # pydicom finds its pixel decoders/encoders by name, pylibjpeg its plugins by metadata;
        # `import pydicom` reads pydicom/data/urls.json (its examples), rendering its palettes.
        "--include-package=pydicom.pixels", "--include-package-data=pydicom",
        *(f"--include-distribution-metadata={dist}" for dist in METADATA),
        "--include-module=_json", "--include-module=_bisect",
        "--include-module=jinja2.ext",  # the console's i18n extension, named in a string
        *(f"--noinclude-custom-mode={name}:bytecode" for name in BYTECODE),
        *(f"--nofollow-import-to={name}" for name in NOFOLLOW),
        *(f"--noinclude-data-files={pattern}" for pattern in NO_DATA),
        f"--report={output / 'report.xml'}",
        str(ENTRY),
    ]  # fmt: skip


def link_sources() -> None:
    package = SOURCE_TREE / "mekong"
    package.mkdir(parents=True, exist_ok=True)
    for name, folder in PACKAGE_DIRS.items():
        link = package / name
        if not link.is_symlink():
            link.symlink_to(folder)


def build_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.setdefault("NUITKA_CACHE_DIR", str(BUILD / "nuitka-cache"))
    env.setdefault("CCACHE_DIR", str(BUILD / "ccache"))
    env["PYTHONPATH"] = str(SOURCE_TREE)
    return env


def build(mode: str) -> Path:
    if not (BUILD / "ohif" / "index.html").is_file():
        raise SystemExit("the viewer is missing: run `make setup` first")
    link_sources()
    output = BUILD / "nuitka" / mode
    command = [sys.executable, "-m", "nuitka", *nuitka_flags(mode, output)]
    subprocess.run(command, check=True, env=build_env(), cwd=SOURCE_TREE)
    return install(mode, output)


def install(mode: str, output: Path) -> Path:
    """Move the result into dist/, replacing the previous one."""
    DIST.mkdir(exist_ok=True)
    if mode == "onefile":
        target = DIST / "mekong"
        os.replace(output / EXE, target)
        return target
    folder = DIST / "mekong.dist"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.move(output / "entry.dist", folder)
    return folder / EXE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("onefile", "standalone"))
    print(build(parser.parse_args().mode))


if __name__ == "__main__":
    main()
