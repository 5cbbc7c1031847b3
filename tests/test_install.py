"""`mekong install` into a folder: binary, unit, user, data dir, default configuration."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mekong.shared.appliance.install import Layout, install
from mekong.shared.config import load_config
from tests.nodeproc import mekong_command, mekong_env


def _binary(tmp_path: Path, text: str) -> Path:
    binary = tmp_path / "mekong-build"
    binary.write_text(f"#!/bin/sh\necho {text}\n")
    binary.chmod(0o755)
    return binary


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = mekong_command("install", *args)
    return subprocess.run(command, capture_output=True, text=True, env=mekong_env())


def _entry(root: Path, table: str, name: str) -> list[str]:
    for line in (root / "etc" / table).read_text().splitlines():
        if line.split(":")[0] == name:
            return line.split(":")
    raise AssertionError(f"{name} not in {table}")


def test_install_edge_into_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = _cli("--mode", "edge", "--root", str(root), "--binary", str(_binary(tmp_path, "v1")))
    assert result.returncode == 0, result.stderr
    installed = root / "opt/mekong/bin/mekong"
    assert subprocess.run([installed], capture_output=True, text=True).stdout == "v1\n"
    unit = (root / "etc/systemd/system/mekong-edge.service").read_text()
    assert "ExecStart=/opt/mekong/bin/mekong serve --mode edge" in unit
    user = _entry(root, "passwd", "mekong")
    assert user[5:] == ["/var/lib/mekong", "/usr/sbin/nologin"]
    assert "mekong" in _entry(root, "group", "video")[3].split(",")
    data = (root / "var/lib/mekong").stat()
    assert (data.st_uid, data.st_gid, data.st_mode & 0o777) == (int(user[2]), int(user[3]), 0o750)
    config = root / "etc/mekong/mekong.toml"
    assert config.stat().st_mode & 0o777 == 0o640 and config.stat().st_gid == int(user[3])
    loaded = load_config(config)
    assert (loaded.mode, loaded.bind) == ("edge", "0.0.0.0")
    assert not list(root.rglob(".*.tmp"))


def test_reinstall_replaces_the_binary_and_keeps_the_configuration(tmp_path: Path) -> None:
    root = tmp_path / "root"
    layout = Layout(root, "hub", image=False)
    install(layout, _binary(tmp_path, "v1"))
    config = root / "etc/mekong/mekong.toml"
    config.write_text(config.read_text() + "\n# the site's own change\n")
    install(layout, _binary(tmp_path, "v2"))
    assert config.read_text().endswith("# the site's own change\n")
    assert load_config(config).mode == "hub"
    out = subprocess.run([root / "opt/mekong/bin/mekong"], capture_output=True, text=True).stdout
    assert out == "v2\n"
    assert "mekong" not in _entry(root, "group", "mekong")[3]  # the hub needs no video group
    assert not (root / "etc/group").read_text().count("video")


def test_image_install_uses_vendor_paths_and_enables_the_unit(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(Layout(root, "edge", image=True), _binary(tmp_path, "v1"))
    assert (root / "usr/lib/systemd/system/mekong-edge.service").is_file()
    assert (root / "usr/lib/sysusers.d/mekong.conf").is_file()
    wanted = root / "etc/systemd/system/multi-user.target.wants/mekong-edge.service"
    assert wanted.is_symlink()
    assert str(wanted.readlink()) == "/usr/lib/systemd/system/mekong-edge.service"


def test_install_from_a_venv_needs_the_binary(tmp_path: Path) -> None:
    result = _cli("--mode", "edge", "--root", str(tmp_path))
    assert result.returncode == 2
    assert "give --binary PATH" in result.stderr
    assert not (tmp_path / "opt").exists()
    missing = _cli("--mode", "edge", "--root", str(tmp_path), "--binary", str(tmp_path / "none"))
    assert missing.returncode == 2 and "is not an executable file" in missing.stderr
