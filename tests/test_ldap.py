"""Sign-in through the hospital directory (PACS-4.6) against a real OpenLDAP ``slapd``.

The node searches with a service account over ldaps:// (self-signed CA), binds as the user and
maps the user's groups to roles; local accounts keep working when the directory is down.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mekong.shared.auth import directory
from mekong.shared.config import ConfigError, LdapConfig, load_config
from tests.authn import STRONG, add_user, browser, db, signed_in
from tests.ldap_peer import GROUPS, PEOPLE, SERVICE_DN, Slapd, base_entries, group, person
from tests.nodeproc import NodeProcess

SERVICE_PASSWORD = "svc-Mekong-7"
AN_PASSWORD = "Mật-khẩu-An-2026"  # UTF-8 in the bind too


@pytest.fixture(scope="module")
def ldap_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, Slapd]]:
    root = tmp_path_factory.mktemp("ldap")
    slapd = Slapd(root / "slapd").configure().start()
    try:
        slapd.add(base_entries(SERVICE_PASSWORD))
        slapd.add("\n".join([
            person("nguyenvanan", "Nguyễn Văn An", AN_PASSWORD),
            person("tranthibinh", "Trần Thị Bình", "Binh-pass-42"),
            person("phamquantri", "Phạm Quản Trị", "Tri-pass-42"),
            person("khongnhom", "Không Nhóm", "Nhom-pass-42"),
            person("le.van.cuong", "Lê Văn Cường", "Cuong-pass-42"),
            group("bacsi", "nguyenvanan", "tranthibinh", "le.van.cuong"),
            group("quantri", "phamquantri"),
        ]))  # fmt: skip
        node = NodeProcess(root / "data", trusted_loopback=False,
                           extra_args=["--config", str(_config(root, slapd))])  # fmt: skip
        yield node.start(), slapd
        node.stop()
    finally:
        slapd.stop()


def _config(root: Path, slapd: Slapd) -> Path:
    secret = root / "ldap-service-password"
    secret.write_text(SERVICE_PASSWORD + "\n")
    secret.chmod(0o600)
    config = root / "mekong.toml"
    config.write_text(f"""
[ldap]
enabled = true
url = "{slapd.tls_url}"
ca_file = "{slapd.cert}"
timeout_seconds = 2.0
bind_dn = "{SERVICE_DN}"
bind_password_file = "{secret}"
user_base = "{PEOPLE}"
group_base = "{GROUPS}"

[ldap.group_roles]
"cn=quantri,{GROUPS}" = "admin"
"cn=bacsi,{GROUPS}" = "radiologist"
""")
    return config


def _audit(node: NodeProcess, actor: str) -> list[tuple[str, dict]]:
    with db(node) as conn:
        rows = conn.execute("SELECT outcome, detail FROM audit_event WHERE actor = ? AND "
                            "action = 'login' ORDER BY id", (actor,)).fetchall()  # fmt: skip
    return [(outcome, json.loads(detail or "{}")) for outcome, detail in rows]


def _wait_audit(node: NodeProcess, actor: str, count: int) -> list[tuple[str, dict]]:
    for _ in range(100):
        rows = _audit(node, actor)
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    return _audit(node, actor)


def test_a_directory_user_signs_in_with_the_mapped_role(ldap_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = ldap_node
    session = browser(node)
    reply = session.login("nguyenvanan", AN_PASSWORD)
    assert reply.status_code == 200, reply.text
    me = reply.json()
    assert (me["role"], me["display_name"], me["directory"], me["next"]) == (
        "radiologist", "Nguyễn Văn An", True, "")  # fmt: skip
    assert session.get("/dicom-web/studies").status_code == 200
    with db(node) as conn:
        row = conn.execute("SELECT directory, password_hash, must_change FROM app_user "
                           "WHERE username = 'nguyenvanan'").fetchone()  # fmt: skip
    assert row == (1, "", 0)  # no local password
    body = {"current_password": AN_PASSWORD, "new_password": STRONG}
    change = session.send("POST", "/api/auth/password", json=body)
    assert change.status_code == 400 and "directory" in change.json()["error"]
    assert _wait_audit(node, "nguyenvanan", 1)[-1] == ("success", {"via": "ldap"})


def test_a_directory_admin_still_needs_a_second_factor(ldap_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = ldap_node
    reply = browser(node).login("phamquantri", "Tri-pass-42")
    assert reply.ok and reply.json()["role"] == "admin"
    assert reply.json()["next"] == "enrol_totp"


def test_a_wrong_password_is_refused_and_counts_toward_the_challenge(ldap_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = ldap_node
    assert browser(node).login("tranthibinh", "Binh-pass-42").ok  # the local row exists now
    for _ in range(5):
        wrong = browser(node).login("tranthibinh", "Binh-pass-43")
        assert wrong.status_code == 401 and "challenge_required" not in wrong.json()
    sixth = browser(node).login("tranthibinh", "Binh-pass-42")  # right, but without the challenge
    assert sixth.status_code == 401 and sixth.json()["challenge_required"]
    failures = [d for outcome, d in _wait_audit(node, "tranthibinh", 7) if outcome == "failure"]
    assert failures[0] == {"via": "ldap", "reason": "the directory refused the password"}


def test_users_not_in_the_directory_or_not_in_a_group_are_refused(ldap_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = ldap_node
    assert browser(node).login("khongco", "Whatever-1").status_code == 401
    no_group = browser(node).login("khongnhom", "Nhom-pass-42")
    assert no_group.status_code == 403 and "group" in no_group.json()["error"]
    dotted = browser(node).login("le.van.cuong", "Cuong-pass-42")  # a name outside SEC-1
    assert dotted.status_code == 403 and "SEC-1" in dotted.json()["error"]
    with db(node) as conn:
        made = {r[0] for r in conn.execute("SELECT username FROM app_user WHERE directory = 1")}
    assert not made & {"khongco", "khongnhom", "le.van.cuong"}
    assert _wait_audit(node, "khongco", 1)[0][1]["reason"] == "not in the directory"


def test_bind_dn_template_with_start_tls(ldap_node, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The other way to find a user: bind straight as ``uid={username},…`` over StartTLS."""
    _, slapd = ldap_node
    config = LdapConfig(
        enabled=True, url=slapd.url, start_tls=True, ca_file=str(slapd.cert),
        user_dn_template=f"uid={{username}},{PEOPLE}", group_base=GROUPS,
        group_roles=((f"cn=bacsi,{GROUPS}", "radiologist"),),
    )  # fmt: skip
    ok = asyncio.run(directory.authenticate(config, "nguyenvanan", AN_PASSWORD))
    assert (ok.outcome, ok.role, ok.display_name) == ("ok", "radiologist", "Nguyễn Văn An")
    wrong = asyncio.run(directory.authenticate(config, "nguyenvanan", "Sai-1"))
    assert wrong.outcome == directory.WRONG_PASSWORD
    untrusted = replace(config, ca_file="")  # the self-signed certificate is not trusted
    assert asyncio.run(directory.authenticate(untrusted, "nguyenvanan", AN_PASSWORD)).outcome == (
        directory.UNAVAILABLE
    )


def test_a_directory_outage_leaves_local_accounts_working(ldap_node) -> None:  # type: ignore[no-untyped-def]
    node, slapd = ldap_node
    signed_in(node, "it_local", "technician")
    password = add_user(node, "admin_local", "admin")
    slapd.stop()
    local = browser(node).login("admin_local", password)
    assert local.ok and local.json()["next"] == "change_password"
    assert browser(node).login("it_local", STRONG).ok
    down = browser(node).login("nguyenvanan", AN_PASSWORD)
    assert down.status_code == 503 and "directory" in down.json()["error"]
    assert "local accounts" in down.json()["error"]


def test_ldap_config_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    for text, key in [
        ('[ldap]\nenabled = true\nurl = "http://dc"\nuser_base = "o=x"\ndefault_role = "auditor"',
         "ldap.url"),
        ('[ldap]\nenabled = true\nurl = "ldaps://dc"\ndefault_role = "auditor"', "user_base"),
        ('[ldap]\nenabled = true\nurl = "ldap://dc"\nuser_base = "o=x"\n'
         '[ldap.group_roles]\n"cn=g,o=x" = "wizard"', "ldap.group_roles"),
    ]:  # fmt: skip
        bad.write_text(text)
        with pytest.raises(ConfigError, match=key):
            load_config(bad)


def test_directory_rows_never_sign_in_with_a_local_password(tmp_path: Path) -> None:
    """With LDAP turned off, a directory account's empty local hash never matches."""
    from mekong.shared.auth.passwords import verify_password

    assert not verify_password("", "") and not verify_password("", AN_PASSWORD)
    assert sqlite3.sqlite_version_info >= (3, 35)  # ALTER TABLE … DROP COLUMN (downgrade)
