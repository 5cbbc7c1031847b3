"""``mekong install``: put the binary, its systemd unit, its user and a default configuration in
place (PACS-7 automatic set-up; the layout the upgrade relies on, PACS-7.2 / QOS-3.2).

    mekong install --mode edge|hub [--root DIR] [--binary PATH] [--image]

Layout (under ``--root``, default ``/``): ``/opt/mekong/bin/mekong``, ``/etc/mekong/mekong.toml``
(only if absent), ``/var/lib/mekong`` (user ``mekong``), the unit in ``/etc/systemd/system``
and the user in ``/etc/sysusers.d`` — or, with ``--image`` (an OS image being built), in
``/usr/lib`` with the unit enabled offline (``systemctl --root``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mekong.shared.config import ConfigError
from mekong.shared.storage.files import copy_checked, fsync_dir, replace_file

BINARY = "/opt/mekong/bin/mekong"
CONFIG = "/etc/mekong/mekong.toml"
DATA = "/var/lib/mekong"
USER = "mekong"


@dataclass(frozen=True)
class Layout:
    root: Path
    mode: str
    image: bool

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def unit_name(self) -> str:
        return f"mekong-{self.mode}.service"

    @property
    def unit(self) -> Path:
        folder = "/usr/lib/systemd/system" if self.image else "/etc/systemd/system"
        return self.path(f"{folder}/{self.unit_name}")

    @property
    def sysusers(self) -> Path:
        return self.path(f"{'/usr/lib' if self.image else '/etc'}/sysusers.d/mekong.conf")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("install", help="install the binary as a systemd service")
    parser.add_argument("--mode", choices=["edge", "hub"], required=True)
    parser.add_argument("--root", type=Path, default=Path("/"), help="install below this folder")
    parser.add_argument("--binary", type=Path, help="binary to install (default: this one)")
    parser.add_argument(
        "--image", action="store_true", help="an OS image: vendor paths, unit enabled offline"
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    layout = Layout(args.root.resolve(), args.mode, args.image)
    install(layout, source_binary(args.binary))
    if layout.image:
        print(f"installed into the image at {layout.root}; {layout.unit_name} enabled")
    elif layout.root == Path("/"):
        print(f"installed; start it with: systemctl daemon-reload && "
              f"systemctl enable --now {layout.unit_name}")  # fmt: skip
    else:
        print(f"installed below {layout.root}")
    return 0


def source_binary(given: Path | None) -> Path:
    """The binary to copy: ``--binary``, else this program when it is a onefile binary."""
    if given is not None:
        if not given.is_file() or not os.access(given, os.X_OK):
            raise ConfigError(f"--binary {given} is not an executable file")
        return given
    running = _onefile_binary()
    if running is None:
        raise ConfigError(
            "not running from the single-file binary: give --binary PATH (e.g. dist/mekong)"
        )
    return running


def _onefile_binary() -> Path | None:
    """The onefile binary this process was unpacked from (not the unpacked copy in /tmp)."""
    compiled = "__compiled__" in globals() or getattr(sys, "frozen", False)
    if not compiled or "NUITKA_ONEFILE_PARENT" not in os.environ:
        return None  # a venv, or a standalone folder (more than one file to install)
    # which variable carries the launcher's path differs between Nuitka versions
    for name in ("NUITKA_ONEFILE_BINARY", "NUITKA_ORIGINAL_ARGV0"):
        if os.environ.get(name):
            return Path(os.environ[name]).resolve()
    return Path(sys.argv[0]).resolve()


def install(layout: Layout, binary: Path) -> None:
    _copy_binary(binary, layout.path(BINARY))
    _write_resource(f"systemd/mekong-{layout.mode}.service", layout.unit, 0o644)
    _write_resource(f"systemd/sysusers-{layout.mode}.conf", layout.sysusers, 0o644)
    _create_user(layout)
    uid, gid = _ids(layout.root)
    _write_config(layout, gid)
    data = layout.path(DATA)
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o750)
    os.chown(data, uid, gid)
    if layout.image:
        _enable_offline(layout)


def _copy_binary(source: Path, target: Path) -> None:
    if source.resolve() == target.resolve():
        return  # already in place (an install run from the installed binary)
    copy_checked(source, target)  # temporary file, fsync, rename: never half a binary
    os.chmod(target, 0o755)
    fsync_dir(target.parent)


def _write_resource(name: str, target: Path, mode: int) -> None:
    text = resources.files("mekong.shared.appliance").joinpath(name).read_bytes()
    replace_file(target, text, mode)
    os.chmod(target, mode)  # whatever the installer's umask


def _write_config(layout: Layout, gid: int) -> None:
    target = layout.path(CONFIG)
    if target.exists():
        return
    text = resources.files("mekong.shared.appliance").joinpath(f"config/{layout.mode}.toml")
    replace_file(target, text.read_bytes(), 0o640)
    os.chown(target, 0, gid)  # the node reads it through its group; a hub token may be in it


def _create_user(layout: Layout) -> None:
    if shutil.which("systemd-sysusers") is None:
        raise ConfigError("systemd-sysusers not found: mekong install needs systemd")
    layout.path("/etc").mkdir(parents=True, exist_ok=True)  # where the passwd lock goes
    command = ["systemd-sysusers", f"--root={layout.root}", layout.sysusers.name]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(f"creating the user {USER} failed: {result.stderr.strip()}")


def _ids(root: Path) -> tuple[int, int]:
    """The user's uid and gid as the target system's /etc/passwd has them."""
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == USER:
            return int(fields[2]), int(fields[3])
    raise ConfigError(f"user {USER} missing from {root / 'etc/passwd'}")


def _enable_offline(layout: Layout) -> None:
    command = ["systemctl", f"--root={layout.root}", "enable", layout.unit_name]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(f"enabling {layout.unit_name} failed: {result.stderr.strip()}")
