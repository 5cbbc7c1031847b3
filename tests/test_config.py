"""Configuration: flags > TOML file > defaults, and one clear line + exit 2 on bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mekong.shared.config import ConfigError, load_config


def test_defaults_are_the_documented_ones() -> None:
    config = load_config()
    assert (config.mode, config.http.port, config.dicom.port, config.hl7.port) == (
        "edge", 8080, 11112, 2575,
    )  # fmt: skip
    assert config.dicom.ae_title == "MEKONG"
    assert config.data_dir == Path("data")


def test_flags_override_file_which_overrides_defaults(tmp_path: Path) -> None:
    file = tmp_path / "node.toml"
    file.write_text('mode = "hub"\n[dicom]\nport = 104\nae_title = "FILEAE"\n[http]\nport = 9000\n')
    config = load_config(file, {"dicom.port": 4242, "http.port": None})
    assert config.mode == "hub"
    assert config.dicom.port == 4242
    assert config.dicom.ae_title == "FILEAE"
    assert config.http.port == 9000


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": "satellite"}, "mode must be one of"),
        ({"dicom.port": 70000}, "dicom.port must be 0..65535"),
        ({"dicom.ae_title": "A" * 17}, "dicom.ae_title"),
        ({"dicom.ae_title": "BAD\\AE"}, "dicom.ae_title"),
        ({"bind": "not-an-ip"}, "bind must be an IP address"),
        ({"dicom.unknown_callers": "maybe"}, "dicom.unknown_callers"),
        ({"http.frame_ancestors": "'self'; script-src *"}, "http.frame_ancestors"),
        ({"http.frame_ancestors": "'none' 'self'"}, "http.frame_ancestors"),
        ({"http.frame_ancestors": ""}, "http.frame_ancestors"),
        ({"http.frame_ancestors": "https://his.example.org,'self'"}, "http.frame_ancestors"),
        ({"http.viewer_dir": 5}, "http.viewer_dir"),
        ({"uplink.batch_size": 0}, "uplink.batch_size"),  # checked without uplink.url too
        ({"dicom.uid_root": "1.2.840.01"}, "dicom.uid_root.*leading zero"),
        ({"dicom.uid_root": "1.2.840."}, "dicom.uid_root"),
        ({"dicom.uid_root": "1.2.abc"}, "dicom.uid_root"),
        ({"dicom.uid_root": "1." * 25 + "1"}, "dicom.uid_root.*at most 40"),
    ],
)
def test_bad_values_name_the_key(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "node.toml"
    file.write_text("[dicom]\nprot = 104\n")
    with pytest.raises(ConfigError, match="unknown config key 'dicom.prot'"):
        load_config(file)


def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mekong.shared.cli", "serve", "--data", str(tmp_path),
         "--dicom-port", "99999"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["mekong: dicom.port must be 0..65535, got 99999"]


def test_cli_port_in_use_exits_2_with_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "mekong.shared.cli", "serve", "--data", str(tmp_path),
             "--http-port", str(port), "--dicom-port", "0"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("mekong: cannot start:")


def test_booleans_are_not_numbers(tmp_path: Path) -> None:
    file = tmp_path / "node.toml"
    file.write_text("[dicom]\nnetwork_timeout = true\n")
    with pytest.raises(ConfigError, match="'dicom.network_timeout' must be float"):
        load_config(file)


@pytest.mark.parametrize(
    "sources", ["'self'", "'none'", "'self' https://his.example.org", "https://*.bv.vn:8443 http:"]
)
def test_frame_ancestors_accepts_csp_sources(sources: str) -> None:
    assert load_config(None, {"http.frame_ancestors": sources}).http.frame_ancestors == sources


def test_viewer_dir_from_file(tmp_path: Path) -> None:
    file = tmp_path / "node.toml"
    file.write_text('[http]\nviewer_dir = "/opt/mekong/ohif"\n')
    assert load_config(file).http.viewer_dir == Path("/opt/mekong/ohif")
    assert load_config().http.viewer_dir is None
