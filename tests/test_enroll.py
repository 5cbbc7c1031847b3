"""Hub settings for an edge box from a USB stick's mekong-enroll.toml or the console: written
whole into the configuration, or a clear error and nothing changed."""

from __future__ import annotations

import contextlib
import io
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from mekong.shared.appliance import tomlwrite
from mekong.shared.appliance.enroll import HubSettings, apply, read_enroll_file, seed
from mekong.shared.cli import main
from mekong.shared.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
FACTORY = REPO / "shared/appliance/config/edge.toml"


@dataclass(frozen=True)
class Run:
    returncode: int
    stderr: str


def _mekong(*args: str) -> Run:
    """The command line in this process (its exit status and stderr), faster than a child."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        status = main(list(args))
    return Run(status, stderr.getvalue())


def _firstboot(config: Path, *extra: str) -> Run:
    return _mekong("firstboot", "--config", str(config), "--factory", str(FACTORY),
                   "--group", "root", *extra)  # fmt: skip


def _stick(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "usb" / "mekong-enroll.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_blank_data_partition_gets_the_factory_configuration(tmp_path: Path) -> None:
    config = tmp_path / "config" / "mekong.toml"
    result = _firstboot(config)
    assert result.returncode == 0, result.stderr
    assert config.read_bytes() == FACTORY.read_bytes()
    assert config.stat().st_mode & 0o777 == 0o640
    assert not load_config(config).hub.enabled  # unenrolled: the edge works on its own


def test_usb_stick_enrolls(tmp_path: Path) -> None:
    config = tmp_path / "mekong.toml"
    stick = _stick(tmp_path, 'hub_url = "https://hub.benhvien.vn:8080/"\ntoken = "tok-123"\n')
    result = _firstboot(config, "--enroll-file", str(stick))
    assert result.returncode == 0, result.stderr
    loaded = load_config(config)
    assert (loaded.hub.url, loaded.hub.enroll_token) == ("https://hub.benhvien.vn:8080", "tok-123")
    assert (loaded.mode, loaded.bind, loaded.dicom.ae_title) == ("edge", "0.0.0.0", "MEKONG")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('hub_url = "https://hub"\ntoken = ', "not a readable TOML file"),
        ('hub_url = "ftp://hub"\ntoken = "t"\n', "is not an http(s):// URL"),
        ('hub_url = "https://hub"\n', "hub_url and token must both be given"),
        ('hub_url = "https://hub"\ntoken = "a b"\n', "the token is empty or has spaces"),
        ('hub_url = "https://hub"\ntoken = "t"\nsite = "x"\n', "unknown key(s) site"),
    ],
)
def test_a_bad_stick_changes_nothing(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "mekong.toml"
    config.write_text('mode = "edge"\n[dicom]\nae_title = "CLINIC1"\n')
    before = config.read_bytes()
    result = _firstboot(config, "--enroll-file", str(_stick(tmp_path, text)))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert config.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mekong.toml", "usb"]


def test_a_first_boot_with_a_bad_stick_writes_no_configuration(tmp_path: Path) -> None:
    config = tmp_path / "mekong.toml"
    result = _firstboot(config, "--enroll-file", str(_stick(tmp_path, "token = 1\n")))
    assert result.returncode == 2 and not config.exists()


def test_settings_the_node_would_refuse_are_not_written(tmp_path: Path) -> None:
    config = tmp_path / "mekong.toml"
    config.write_text('mode = "edge"\n[dicom]\nport = 70000\n')  # already broken
    with pytest.raises(ConfigError):
        apply(config, HubSettings("https://hub", "t"))
    assert config.read_text() == 'mode = "edge"\n[dicom]\nport = 70000\n'
    assert [p.name for p in tmp_path.iterdir()] == ["mekong.toml"]


def test_console_enroll_keeps_the_sites_settings(tmp_path: Path) -> None:
    config = tmp_path / "mekong.toml"
    assert seed(config, FACTORY, os.getgid())
    text = config.read_text().replace('ae_title = "MEKONG"', 'ae_title = "PHONGKHAM_1"')
    config.write_text(
        text + '\n[[hl7.destinations]]\nname = "his"\nhost = "10.0.0.5"\nport = 2575\n'
    )
    result = _mekong("enroll", "--config", str(config), "--hub-url", "http://10.1.1.1:8080",
                     "--token", "abc")  # fmt: skip
    assert result.returncode == 0, result.stderr
    loaded = load_config(config)
    assert loaded.dicom.ae_title == "PHONGKHAM_1" and loaded.hl7.destinations[0].host == "10.0.0.5"
    assert loaded.hub.url == "http://10.1.1.1:8080"
    assert not seed(config, FACTORY, os.getgid())  # never overwritten


def test_only_an_edge_enrolls(tmp_path: Path) -> None:
    config = tmp_path / "mekong.toml"
    config.write_text('mode = "hub"\n')
    with pytest.raises(ConfigError, match="only an edge enrolls"):
        apply(config, HubSettings("https://hub", "t"))


def test_read_enroll_file_accepts_utf8(tmp_path: Path) -> None:
    stick = _stick(tmp_path, '# Phòng khám Đa khoa\nhub_url = "https://hub"\ntoken = "t"\n')
    assert read_enroll_file(stick) == HubSettings("https://hub", "t")


def test_toml_writer_round_trips() -> None:
    data = {
        "mode": "edge",
        "ratio": 0.5,
        "big": float("inf"),
        "on": True,
        "names": ["Nguyễn Văn A", 'quote " and \\ and \n'],
        "empty": [],
        "dicom": {"port": 104, "ae title": "X", "nested": {"deep": 1}},
        "hl7": {"destinations": [{"name": "a", "port": 1}, {"name": "b", "sub": {"k": "v"}}]},
        "hub": {},
    }
    assert tomllib.loads(tomlwrite.dumps(data)) == data
    factory = tomllib.loads(FACTORY.read_text())
    assert tomllib.loads(tomlwrite.dumps(factory)) == factory
