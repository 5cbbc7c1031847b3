"""The edge box image (firmware/build.sh) holds what it should: binary, units, user, capture-card
names, NTP, a read-only root with a data partition, USB enrollment before the node.

The rootfs checks need a built rootfs (debootstrap takes minutes): ``make test-firmware`` builds
one and points ``MEKONG_ROOTFS`` at it. The udev rules are checked without one too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RULES = "etc/udev/rules.d/70-mekong-capture.rules"

# udev(7): the keys these rules may use, and the operators each kind takes
MATCH_KEYS = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "KERNELS", "DRIVERS", "ATTR",
              "ATTRS", "ENV", "TAG", "TEST", "PROGRAM", "RESULT"}  # fmt: skip
ASSIGN_KEYS = {"GROUP", "MODE", "OWNER", "SYMLINK", "ENV", "TAG", "RUN", "LABEL", "GOTO",
               "IMPORT", "OPTIONS", "NAME"}  # fmt: skip
PAIR = re.compile(r'\s*([A-Z_]+)(\{[^}]*\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,|$)')


def parse_rule(line: str) -> list[tuple[str, str, str]]:
    """A rule line as (key, operator, value) triples; ValueError for what udev would reject."""
    pairs: list[tuple[str, str, str]] = []
    position = 0
    while position < len(line):
        found = PAIR.match(line, position)
        if not found:
            raise ValueError(f"cannot parse at column {position}: {line[position:]!r}")
        key, _, operator, value, _ = found.groups()
        matching = operator in ("==", "!=")
        if key not in (MATCH_KEYS if matching else ASSIGN_KEYS):
            raise ValueError(
                f"{key}{operator} is not a udev {'match' if matching else 'assignment'}"
            )
        pairs.append((key, operator, value))
        position = found.end()
    return pairs


def rule_lines(text: str) -> list[list[tuple[str, str, str]]]:
    return [parse_rule(line) for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_capture_rules_parse_and_name_four_ports() -> None:
    rules = rule_lines((REPO / "firmware/rootfs" / RULES).read_text())
    labels = {v for rule in rules for k, _, v in rule if k == "LABEL"}
    gotos = {v for rule in rules for k, _, v in rule if k == "GOTO"}
    assert gotos <= labels
    names = [v for rule in rules for k, o, v in rule if k == "SYMLINK" and o == "+="]
    assert names[:4] == [f"capture-us{n}" for n in range(1, 5)]
    assert any(("SUBSYSTEM", "!=", "video4linux") in rule for rule in rules)
    assert [("GROUP", "=", "video"), ("MODE", "=", "0660")] in rules


def test_rule_parser_rejects_mistakes() -> None:
    with pytest.raises(ValueError):
        parse_rule('SUBSYSTEM="video4linux"')  # an assignment to a match-only key
    with pytest.raises(ValueError):
        parse_rule('SYMLINK+="x" GROUP="video"')  # a missing comma
    with pytest.raises(ValueError):
        parse_rule('ATTRS{devpath}=="1", SYMLNK+="capture-us1"')


ROOTFS = os.environ.get("MEKONG_ROOTFS")
needs_rootfs = pytest.mark.skipif(not ROOTFS, reason="MEKONG_ROOTFS not set (make test-firmware)")


@pytest.fixture
def root() -> Path:
    assert ROOTFS
    return Path(ROOTFS).resolve()


def _table(root: Path, name: str) -> dict[str, list[str]]:
    lines = (root / "etc" / name).read_text().splitlines()
    return {line.split(":")[0]: line.split(":") for line in lines if line}


def _fstab(root: Path) -> dict[str, list[str]]:
    entries = [line.split() for line in (root / "etc/fstab").read_text().splitlines()]
    return {fields[1]: fields for fields in entries if fields and not fields[0].startswith("#")}


def _enabled(root: Path, unit: str, target: str = "multi-user.target") -> bool:
    return (root / f"etc/systemd/system/{target}.wants/{unit}").is_symlink()


@needs_rootfs
def test_binary_and_units(root: Path) -> None:
    binary = root / "opt/mekong/bin/mekong"
    assert binary.is_file() and os.access(binary, os.X_OK)
    unit = root / "usr/lib/systemd/system/mekong-edge.service"
    assert "ExecStart=/opt/mekong/bin/mekong serve --mode edge" in unit.read_text()
    assert _enabled(root, "mekong-edge.service")
    assert (root / "etc/mekong").readlink() == Path("/var/lib/mekong/config")
    factory = (root / "usr/share/mekong/mekong.toml").read_text()
    assert 'mode = "edge"' in factory


@needs_rootfs
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("unit", ["mekong-edge.service", "mekong-firstboot.service"])
def test_units_verify_inside_the_rootfs(root: Path, unit: str) -> None:
    command = ["systemd-analyze", "verify", "--man=no", f"--root={root}",
               f"/usr/lib/systemd/system/{unit}"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@needs_rootfs
def test_user_and_groups(root: Path) -> None:
    user = _table(root, "passwd")["mekong"]
    assert user[5:] == ["/var/lib/mekong", "/usr/sbin/nologin"]
    assert "mekong" in _table(root, "group")["video"][3].split(",")
    assert _table(root, "group")["mekong"][2] == user[3]


@needs_rootfs
def test_read_only_root_and_data_partition(root: Path) -> None:
    fstab = _fstab(root)
    assert fstab["/"][0] == "LABEL=MEKONG-ROOT" and "ro" in fstab["/"][3].split(",")
    data = fstab["/var/lib/mekong"]
    assert data[0] == "LABEL=MEKONG-DATA" and "rw" in data[3].split(",")
    for volatile in ("/tmp", "/var/tmp", "/var/log", "/var/lib/systemd"):
        assert fstab[volatile][2] == "tmpfs", volatile
    journald = (root / "etc/systemd/journald.conf.d/mekong.conf").read_text()
    assert "Storage=volatile" in journald
    assert (root / "etc/machine-id").read_text() == ""


@needs_rootfs
def test_time_sync_and_network(root: Path) -> None:
    assert _enabled(root, "systemd-timesyncd.service", "sysinit.target")
    assert "FallbackNTP=" in (root / "etc/systemd/timesyncd.conf.d/mekong.conf").read_text()
    assert _enabled(root, "systemd-networkd.service")
    assert (root / "etc/resolv.conf").readlink() == Path("/run/systemd/resolve/stub-resolv.conf")


@needs_rootfs
def test_first_boot_enrollment_runs_before_the_node(root: Path) -> None:
    assert _enabled(root, "mekong-firstboot.service")
    unit = (root / "usr/lib/systemd/system/mekong-firstboot.service").read_text()
    assert "Before=mekong-edge.service" in unit and "Type=oneshot" in unit
    dropin = (root / "usr/lib/systemd/system/mekong-edge.service.d/image.conf").read_text()
    assert "After=mekong-firstboot.service" in dropin
    script = root / "usr/lib/mekong/firstboot"
    assert os.access(script, os.X_OK)
    assert "/opt/mekong/bin/mekong firstboot" in script.read_text()


@needs_rootfs
def test_runtime_packages_and_capture_rules(root: Path) -> None:
    status = (root / "var/lib/dpkg/status").read_text()
    installed = set(re.findall(r"^Package: (\S+)\nStatus: install ok installed", status, re.M))
    assert {"libzbar0", "fonts-dejavu-core", "systemd-timesyncd", "udev"} <= installed
    assert rule_lines((root / RULES).read_text()) == rule_lines(
        (REPO / "firmware/rootfs" / RULES).read_text()
    )
