"""Upgrades (QOS-3, PACS-7.2): ``mekong upgrade`` swaps the installed binary, the new one
migrates the index at start with the data intact, and a new binary that does not come up is
rolled back. A small restart script stands in for ``systemctl restart`` (no systemd here).

The "previous release" is the code of a real earlier commit (before migration ``ldap1``), run
by this venv's interpreter; the new release is this checkout, or the Nuitka binary when
``MEKONG_BINARY`` is set (``make test-binary``).
"""

from __future__ import annotations

import ast
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from mekong.shared.appliance.upgrade import writable
from tests.conftest import ct_instances, index_digests, mekong_cli, storescu
from tests.nodeproc import NodeProcess

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = REPO / "shared" / "db" / "migrations"
PREVIOUS_RELEASE = "fc140bd^"  # the last commit before migration ldap1 (schema originals2)
PREVIOUS_SCHEMA = "originals2"


def _head_revision() -> str:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(config).get_current_head())


def _schema(data_dir: Path) -> str:
    with closing(sqlite3.connect(f"file:{data_dir / 'index.db'}?mode=ro", uri=True)) as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def _launcher(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def _previous_release(folder: Path) -> Path:
    """The earlier commit's code as an installed package tree, and a launcher that runs it."""
    tree = folder / "release"
    (tree / "mekong").mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", PREVIOUS_RELEASE, "shared", "edge", "central"],
        capture_output=True, check=True,
    )  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(tree / "mekong")], input=archive.stdout, check=True)
    return _launcher(
        folder / "mekong-previous",
        f'PYTHONPATH="{tree}" exec "{sys.executable}" -m mekong.shared.cli "$@"',
    )


def _this_release(folder: Path) -> Path:
    """This checkout, or the built binary run in a clean environment. A launcher file, since
    the standalone build is a folder and an upgrade swaps one file."""
    binary = os.environ.get("MEKONG_BINARY")
    if binary:
        clean = f'env -i PATH=/usr/bin:/bin TCP_NODELAY=1 HOME="$HOME" "{binary}" "$@"'
        return _launcher(folder / "mekong-new", f"exec {clean}")
    return _launcher(folder / "mekong-new", f'exec "{sys.executable}" -m mekong.shared.cli "$@"')


class Service:
    """The installed binary run the way a unit would, restarted by a script (``systemctl``)."""

    def __init__(self, root: Path, installed_from: Path) -> None:
        self.bin = root / "opt" / "mekong" / "bin" / "mekong"
        self.bin.parent.mkdir(parents=True)
        self.bin.write_bytes(installed_from.read_bytes())
        self.bin.chmod(0o755)
        self.node = NodeProcess(root / "data")  # only for its ports, health and data paths
        self.pidfile = root / "node.pid"
        self.restart_script = _launcher(root / "restart", self._restart_body(root / "node.log"))

    def _restart_body(self, log: Path) -> str:
        node = self.node
        serve = (
            f'"{self.bin}" serve --mode edge --data "{node.data_dir}" --bind 127.0.0.1 '
            f"--http-port {node.http_port} --dicom-port {node.dicom_port} "
            f"--hl7-port {node.hl7_port} --anonymous-role admin "
            "--anonymous-network 127.0.0.1/32"
        )
        return (
            f'if [ -f "{self.pidfile}" ]; then pid=$(cat "{self.pidfile}"); kill -TERM "$pid"; '
            f'while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; fi\n'
            f'TCP_NODELAY=1 setsid {serve} >> "{log}" 2>&1 < /dev/null &\n'
            f'echo $! > "{self.pidfile}"'
        )

    def restart(self) -> None:
        subprocess.run([str(self.restart_script)], check=True, timeout=120)

    def wait_healthy(self) -> dict:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                health = self.node.health()
                if health["status"] == "ok":
                    return health
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("the service did not come up")

    def upgrade(self, new: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return mekong_cli(
            "upgrade", str(new), "--installed", str(self.bin),
            "--restart-command", str(self.restart_script),
            "--health-url", f"{self.node.url}/api/health", "--timeout", str(timeout),
        )  # fmt: skip

    def stop(self) -> None:
        if self.pidfile.exists():
            pid = int(self.pidfile.read_text())
            subprocess.run(["kill", "-TERM", str(pid)], check=False)
            subprocess.run(["sh", "-c", f"while kill -0 {pid} 2>/dev/null; do sleep 0.1; done"],
                           timeout=60, check=False)  # fmt: skip


@pytest.fixture
def service_factory(tmp_path: Path):
    started: list[Service] = []

    def make(installed_from: Path) -> Service:
        service = Service(tmp_path / f"box{len(started)}", installed_from)
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()


def test_upgrade_from_the_previous_release_migrates_and_keeps_every_instance(
    tmp_path: Path, service_factory
) -> None:
    service = service_factory(_previous_release(tmp_path))
    service.restart()
    service.wait_healthy()
    assert _schema(service.node.data_dir) == PREVIOUS_SCHEMA
    files = ct_instances(tmp_path / "ct", series=2, count=10)
    assert storescu(service.node, *files).returncode == 0
    before = index_digests(service.node.data_dir)

    result = service.upgrade(_this_release(tmp_path))

    assert result.returncode == 0, result.stderr
    assert "upgraded" in result.stdout and "service back in" in result.stdout
    health = service.node.health()
    assert _schema(service.node.data_dir) == _head_revision() == health["schema"]
    assert health["index"]["instances"] == 20
    assert index_digests(service.node.data_dir) == before
    assert service.bin.with_name("mekong.previous").read_bytes().startswith(b"#!/bin/sh")
    assert mekong_cli("verify", "--data", str(service.node.data_dir)).returncode == 0


def test_a_new_binary_that_does_not_come_up_is_rolled_back(tmp_path: Path, service_factory) -> None:
    current = _this_release(tmp_path)
    service = service_factory(current)
    service.restart()
    first_pid = service.pidfile.read_text()
    service.wait_healthy()
    broken = _launcher(
        tmp_path / "broken",
        'case "$1" in --version) echo "mekong 9.9.9";; *) echo "no config" >&2; exit 1;; esac',
    )

    result = service.upgrade(broken, timeout=6)

    assert result.returncode == 1
    assert "9.9.9 did not become healthy" in result.stderr and "rolled back" in result.stderr
    assert service.bin.read_bytes() == current.read_bytes()
    assert service.bin.with_name("mekong.failed").read_bytes() == broken.read_bytes()
    assert service.pidfile.read_text() != first_pid  # the old binary was started again
    assert service.node.health()["status"] == "ok"


def test_a_file_that_is_not_mekong_changes_nothing(tmp_path: Path, service_factory) -> None:
    current = _this_release(tmp_path)
    service = service_factory(current)
    service.restart()
    service.wait_healthy()
    pid = service.pidfile.read_text()
    not_mekong = tmp_path / "firmware.bin"
    not_mekong.write_bytes(b"\x7fELF truncated download")
    not_mekong.chmod(0o755)

    result = service.upgrade(not_mekong)

    assert result.returncode == 1 and "does not run" in result.stderr
    assert service.bin.read_bytes() == current.read_bytes()
    assert not service.bin.with_name("mekong.previous").exists()
    assert service.pidfile.read_text() == pid  # never restarted


def test_a_rolled_back_release_runs_on_the_newer_schema(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data").start()
    node.stop()
    with closing(sqlite3.connect(node.data_dir / "index.db")) as db:  # what a newer one left
        db.execute("ALTER TABLE instance ADD COLUMN future_column TEXT NOT NULL DEFAULT ''")
        db.execute("UPDATE alembic_version SET version_num = 'zz_future1'")
        db.commit()
    node.start()
    try:
        assert storescu(node, *ct_instances(tmp_path / "ct", series=1, count=2)).returncode == 0
        assert node.health()["schema"] == "zz_future1"
        assert node.health()["index"]["instances"] == 2
    finally:
        node.stop()
    assert "index schema zz_future1 is newer than this version knows" in node.log()


_FORBIDDEN = ("drop_table", "drop_column", "alter_column", "rename_table", "drop_index")


@pytest.mark.parametrize("migration", sorted((MIGRATIONS / "versions").glob("[!_]*.py")))
def test_migrations_only_add(migration: Path) -> None:
    """A rolled-back binary must run on the schema a newer one left: upgrades only add tables,
    indexes and columns that are nullable or have a server default."""
    tree = ast.parse(migration.read_text())
    upgrade = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "upgrade")
    for call in (n for n in ast.walk(upgrade) if isinstance(n, ast.Call)):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else ""
        assert name not in _FORBIDDEN, f"{migration.name}: {name} in upgrade()"
        if name == "add_column":
            column = ast.unparse(call)
            assert "nullable=False" not in column or "server_default" in column, column


@pytest.fixture
def read_only_mount(tmp_path: Path):
    """A small tmpfs mounted read-only, like the edge box's root (needs root: skipped else)."""
    mount_point = tmp_path / "root"
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
                      capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("mounting needs root")
    (mount_point / "bin").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_the_swap_on_a_read_only_root_remounts_it_for_the_swap_only(read_only_mount: Path) -> None:
    folder = read_only_mount / "bin"
    with pytest.raises(OSError):
        (folder / "before").touch()
    with writable(folder):
        (folder / "mekong").write_text("new")
    with pytest.raises(OSError):
        (folder / "after").touch()
    assert (folder / "mekong").read_text() == "new"
