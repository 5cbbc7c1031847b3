"""Console building blocks without a node: menu by role, redirects kept local, secrets hidden,
the recent-lines log buffer, known-AE input checks, C-ECHO errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest

from mekong.shared import logs
from mekong.shared.auth.roles import Role
from mekong.shared.config import NodeConfig
from mekong.shared.console import formats, i18n, menu
from mekong.shared.console.assets import local_path
from mekong.shared.console.headers import security_headers
from mekong.shared.console.system import HIDDEN, effective
from mekong.shared.dimse.echo import echo
from mekong.shared.dimse.known_aes import remote_ae
from tests.nodeproc import free_port


def paths(role: Role) -> set[str]:
    return {entry.path for entry in menu.visible(role.value)}


def test_menu_shows_only_what_the_role_allows() -> None:
    assert paths(Role.RECEPTIONIST) == {"/orders", "/unmatched"}
    assert menu.first_page(Role.RECEPTIONIST.value) == "/orders"
    assert paths(Role.REFERRING) == {"/studies", "/orders", "/unmatched"}
    assert "/admin/hl7" in paths(Role.AUDITOR) and "/admin/hl7" not in paths(Role.TECHNICIAN)
    assert "/audit" in paths(Role.AUDITOR) and "/admin/users" not in paths(Role.AUDITOR)
    assert "/admin/users" in paths(Role.ADMIN) and "/audit" not in paths(Role.ADMIN)
    assert menu.first_page(Role.TECHNICIAN.value) == "/studies"
    assert menu.first_page(Role.AUDITOR.value) == "/admin/status"
    assert menu.first_page("nonsense") is None


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/studies?name=x", "/studies?name=x"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_redirect_targets_stay_on_the_node(target: str | None, expected: str) -> None:
    assert local_path(target) == expected


@dataclass(frozen=True)
class _Ldap:
    url: str = "ldaps://dc.example"
    bind_password: str = "hunter2"
    client_key: str = "/etc/key.pem"
    api_token: str = ""


@dataclass(frozen=True)
class _Config:
    name: str = "node"
    ldap: _Ldap = field(default_factory=_Ldap)


def test_configuration_page_hides_secrets() -> None:
    shown = dict(effective(_Config()))
    assert shown["name"] == "node" and shown["ldap.url"] == "ldaps://dc.example"
    assert shown["ldap.bind_password"] == HIDDEN and shown["ldap.client_key"] == HIDDEN
    assert shown["ldap.api_token"] == ""  # empty: nothing to hide, shown as not set
    assert "hunter2" not in str(effective(_Config()))


def test_configuration_page_shows_the_node_settings() -> None:
    shown = dict(effective(NodeConfig()))
    assert shown["dicom.ae_title"] == "MEKONG" and shown["http.port"] == "8080"
    assert shown["auth.admin_totp"] == "true"


def test_security_headers() -> None:
    headers = security_headers("'self' https://his.example")
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://his.example" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_recent_lines_are_bounded_and_filtered() -> None:
    buffer = logs.RecentLines(size=5)
    logger = logging.getLogger("mekong.test.recent")
    logger.addHandler(buffer)
    logger.setLevel(logging.DEBUG)
    try:
        for n in range(8):
            logger.info("line %d", n)
        logger.warning("Cảnh báo: đĩa sắp đầy")
    finally:
        logger.removeHandler(buffer)
    lines = buffer.lines()
    assert len(lines) == 5 and lines[-1].level == "WARNING"
    assert [line.text.split(": ", 1)[1] for line in buffer.lines("WARNING")] == [
        "Cảnh báo: đĩa sắp đầy"
    ]
    assert len(buffer.lines(text="LINE 7")) == 1
    assert len(buffer.lines(limit=2)) == 2
    with pytest.raises(ValueError):
        buffer.lines("LOUD")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("TOO_LONG_AE_TITLE_X", "h", 104), "AE title"),
        (("CT1", "", 104), "host"),
        (("CT1", "a host", 104), "host"),
        (("CT1", "h", 0), "port"),
        (("CT1", "h", "104"), "port"),
        (("CT1", "h", 104, ["store", "delete"]), "unknown service"),
    ],
)
def test_known_ae_input_is_checked(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        remote_ae(*args)


def test_known_ae_from_good_input() -> None:
    ae = remote_ae("CT1", " 10.0.0.5 ", 104, ["STORE", "echo"], True, "CT phòng 1")
    assert (ae.host, ae.allow, ae.fuzzy_find) == ("10.0.0.5", frozenset({"store", "echo"}), True)


def test_echo_to_a_closed_port_says_so() -> None:
    result = echo("MEKONG", "NOBODY", "127.0.0.1", free_port(), timeout=2)
    assert not result.ok and result.status is None
    assert "connection refused" in result.error


def test_values_are_written_in_the_page_language() -> None:
    i18n.activate("vi")
    assert formats.person("Nguyễn^Thị Hồng Nhung") == "Nguyễn Thị Hồng Nhung"
    assert formats.dicom_date("20240115") == "15/1/24"
    assert formats.dicom_date("2024") == "2024"  # not a full date: shown as stored
    assert formats.size(3 * 1024**3) == "3 GB"
    assert formats.number(1.25) == "1,25"
    i18n.activate("en")
    assert formats.dicom_date("20240115") == "1/15/24"
    assert formats.number(1.25) == "1.25"
    assert formats.path_part("CT 1/A") == "CT%201%2FA"
