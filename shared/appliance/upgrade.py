"""``mekong upgrade``: replace the installed binary, restart, and roll back if health does not
come up (QOS-3: downtime ≤ 5 minutes per upgrade; PACS-7.2).

The data directory is never touched here: the new binary brings the index schema up to date
itself when it starts (Alembic, ``shared/db/engine.py``). Migrations only ever add, so a
rolled-back binary runs on the newer schema (see ``engine.py`` and docs/appliance.md).

Steps, each safe to be interrupted:

1. the new file runs (``NEW --version`` in a clean environment) — else nothing changes;
2. it is copied beside the installed one, fsync'd, and swapped in by rename; the old binary
   stays as ``mekong.previous`` (a hard link made before the swap, so one always exists);
3. the service restarts (``systemctl restart UNIT`` or ``--restart-command``);
4. ``/api/health`` must say ``ok`` from a process started after the restart, with the new
   version, within ``--timeout``; else the previous binary is swapped back and restarted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mekong.shared.storage.files import copy_checked, fsync_dir

CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


class UpgradeError(RuntimeError):
    """The upgrade did not happen (nothing changed) or was rolled back; the message says which."""


@dataclass(frozen=True)
class Installed:
    """The installed binary and how to restart and ask the service that runs it."""

    binary: Path  # e.g. /opt/mekong/bin/mekong
    restart: Callable[[], None]
    health_url: str
    ca_file: Path | None = None

    @property
    def previous(self) -> Path:
        return self.binary.with_name(self.binary.name + ".previous")

    @property
    def failed(self) -> Path:
        return self.binary.with_name(self.binary.name + ".failed")


@dataclass(frozen=True)
class UpgradeResult:
    old_version: str
    new_version: str
    downtime_seconds: float


def upgrade(installed: Installed, new: Path, timeout: float) -> UpgradeResult:
    new_version = binary_version(new)
    old_version = _running_version(installed) or binary_version(installed.binary)
    _stage_and_swap(installed, new)
    restarted = time.monotonic()
    try:
        installed.restart()
    except UpgradeError as exc:
        problem: str | None = str(exc)
    else:
        problem = wait_healthy(installed, new_version, restarted, timeout)
    if problem is None:
        return UpgradeResult(old_version, new_version, time.monotonic() - restarted)
    _roll_back(installed, old_version, timeout)
    raise UpgradeError(
        f"{new_version} did not become healthy ({problem}); rolled back to {old_version}, "
        f"which is running again; the new binary is kept as {installed.failed}"
    )


def binary_version(binary: Path) -> str:
    """The version ``BINARY --version`` prints, run as the service would: clean environment."""
    try:
        done = subprocess.run(
            [str(binary), "--version"], env=CLEAN_ENV, capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UpgradeError(f"{binary} does not run: {exc}") from None
    words = done.stdout.split()
    if done.returncode != 0 or len(words) != 2 or words[0] != "mekong":
        detail = (done.stderr or done.stdout).strip()[-300:]
        raise UpgradeError(f"{binary} is not a working Mekong binary: {detail or 'no output'}")
    return words[1]


def _running_version(installed: Installed) -> str:
    """What the service runs now (releases before ``--version`` existed answer health too)."""
    try:
        return str(_health(installed).get("version", ""))
    except (OSError, ValueError):
        return ""


def _stage_and_swap(installed: Installed, new: Path) -> None:
    folder = installed.binary.parent
    staged = folder / f".{installed.binary.name}.new"
    with writable(folder):
        copy_checked(new, staged)
        os.chmod(staged, 0o755)
        _link_replacing(installed.binary, installed.previous)
        os.replace(staged, installed.binary)
        fsync_dir(folder)


def _roll_back(installed: Installed, old_version: str, timeout: float) -> None:
    with writable(installed.binary.parent):
        _link_replacing(installed.binary, installed.failed)
        _link_replacing(installed.previous, installed.binary)
        fsync_dir(installed.binary.parent)
    restarted = time.monotonic()
    installed.restart()
    problem = wait_healthy(installed, old_version, restarted, timeout)
    if problem is not None:
        raise UpgradeError(
            f"the new binary failed and the previous one ({old_version}) did not come back "
            f"either: {problem}; see the service's journal"
        )


def _link_replacing(source: Path, target: Path) -> None:
    """Make ``target`` name the same file as ``source``, atomically (link, then rename)."""
    tmp = target.with_name(f".{target.name}.link")
    tmp.unlink(missing_ok=True)
    os.link(source, tmp)
    os.replace(tmp, target)


@contextlib.contextmanager
def writable(folder: Path) -> Iterator[None]:
    """The edge box's root file system is read-only (firmware/): remount the one holding
    ``folder`` read-write for the swap, and read-only again after, whatever happened."""
    if not os.statvfs(folder).f_flag & os.ST_RDONLY:
        yield
        return
    mount_point = folder
    while not os.path.ismount(mount_point):
        mount_point = mount_point.parent
    _remount(mount_point, "rw")
    try:
        yield
    finally:
        _remount(mount_point, "ro")


def _remount(mount_point: Path, how: str) -> None:
    done = subprocess.run(["mount", "-o", f"remount,{how}", str(mount_point)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    if done.returncode != 0:
        raise UpgradeError(f"cannot remount {mount_point} {how}: {done.stderr.strip()}")


def wait_healthy(installed: Installed, version: str, since: float, timeout: float) -> str | None:
    """None once a node started after ``since`` says ok with ``version``; else the last reason."""
    deadline = since + timeout
    problem = "no answer"
    while time.monotonic() < deadline:
        try:
            health = _health(installed)
        except (OSError, ValueError) as exc:
            problem = f"health: {exc}"
        else:
            problem = _judge(health, version, time.monotonic() - since)
            if problem is None:
                return None
        time.sleep(0.5)
    return f"{problem} after {timeout:.0f} s"


def _judge(health: dict, version: str, elapsed: float) -> str | None:
    uptime = float(health.get("server", {}).get("uptime_seconds", 1e9))
    if uptime > elapsed + 1:
        return "the old process is still answering"
    if health.get("version") != version:
        return f"version {health.get('version')} answers, not {version}"
    if health.get("status") != "ok":
        return f"status {health.get('status')}: {health.get('components')}"
    return None


def _health(installed: Installed) -> dict:
    context = None
    if installed.health_url.startswith("https:"):
        context = ssl.create_default_context(cafile=installed.ca_file)
    with urllib.request.urlopen(installed.health_url, timeout=5, context=context) as reply:
        return json.load(reply)


def restart_command(unit: str, command: str) -> Callable[[], None]:
    """Restart through systemd (the appliance), or through ``command`` (other supervisors)."""
    argv = shlex.split(command) if command else ["systemctl", "restart", unit]

    def restart() -> None:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise UpgradeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}")

    return restart
