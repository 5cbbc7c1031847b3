"""Sign-in rules (SEC-1..6, QOS-1): each test fails when its rule is removed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mekong.shared.auth import totp
from mekong.shared.auth.passwords import WeakPassword, check_policy
from tests.authn import STRONG, add_token, add_user, browser, cli, db, signed_in
from tests.nodeproc import NodeProcess


@pytest.fixture(scope="module")
def secure_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A node that trusts nobody: every request needs a session or a token (shared by the
    tests of this module; each uses its own user names)."""
    node = NodeProcess(tmp_path_factory.mktemp("secure") / "data", trusted_loopback=False)
    yield node.start()
    node.stop()


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Ab1!", "at least 8"),
        ("abcdefg1!", "upper-case"),
        ("ABCDEFG1!", "lower-case"),
        ("Abcdefgh!", "digit"),
        ("Abcdefgh1", "special"),
        ("Password1!", "too common"),
        ("Matkhau@2026", "too common"),
        ("Xalice-Blue7", "user name"),
    ],
)
def test_password_policy_names_the_broken_rule(password: str, reason: str) -> None:
    with pytest.raises(WeakPassword, match=reason):
        check_policy(password, "alice")


def test_strong_password_passes() -> None:
    check_policy(STRONG, "alice")


def test_first_sign_in_allows_nothing_but_a_password_change(secure_node: NodeProcess) -> None:
    session, password = browser(secure_node), add_user(secure_node, "tech1", "technician")
    reply = session.login("tech1", password)
    assert reply.ok and reply.json()["next"] == "change_password"
    assert session.get("/dicom-web/studies").status_code == 403
    weak_change = {"current_password": password, "new_password": "password"}
    weak = session.send("POST", "/api/auth/password", json=weak_change)
    assert weak.status_code == 400 and "needs" in weak.json()["error"]
    ok = session.send("POST", "/api/auth/password",
                      json={"current_password": password, "new_password": STRONG})  # fmt: skip
    assert ok.ok
    assert session.get("/dicom-web/studies").status_code == 200


def test_previous_password_cannot_be_reused(secure_node: NodeProcess) -> None:
    session = signed_in(secure_node, "tech2", "technician")
    again = session.send("POST", "/api/auth/password",
                         json={"current_password": STRONG, "new_password": STRONG})  # fmt: skip
    assert again.status_code == 400 and "used before" in again.json()["error"]


def test_expired_password_must_be_changed(secure_node: NodeProcess) -> None:
    signed_in(secure_node, "tech3", "technician")
    with db(secure_node) as conn:  # 91 days ago; the default expiry is 90 days
        conn.execute("UPDATE app_user SET password_changed_at = ? WHERE username = 'tech3'",
                     (time.time() - 91 * 86400,))  # fmt: skip
    session = browser(secure_node)
    assert session.login("tech3", STRONG).json()["next"] == "change_password"
    assert session.get("/dicom-web/studies").status_code == 403


def test_sixth_attempt_after_five_failures_needs_the_challenge(secure_node: NodeProcess) -> None:
    signed_in(secure_node, "tech4", "technician")
    session = browser(secure_node)
    for _ in range(5):
        assert session.login("tech4", "Wrong-Password-1").status_code == 401
    refused = session.login("tech4", STRONG)  # the right password is not enough now
    assert refused.status_code == 401 and refused.json()["challenge_required"] is True
    challenge = session.get("/api/auth/challenge").json()
    assert challenge["image"].startswith("data:image/png;base64,")
    wrong = session.login("tech4", STRONG, challenge_id=challenge["challenge_id"],
                          challenge_answer="nope")  # fmt: skip
    assert wrong.status_code == 401


def test_failed_sign_ins_are_rate_limited_per_address(node_factory) -> None:  # type: ignore[no-untyped-def]
    session = browser(node_factory("limited", trusted_loopback=False).start())
    statuses = [session.login(f"nobody{n}", "x").status_code for n in range(22)]
    assert statuses[0] == 401 and statuses[-1] == 429


def test_session_id_is_new_at_each_sign_in_and_cookie_is_protected(
    secure_node: NodeProcess,
) -> None:
    session = signed_in(secure_node, "tech5", "technician")
    first = session.http.cookies["mekong_session"]
    reply = session.login("tech5", STRONG)
    assert session.http.cookies["mekong_session"] != first
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie


def test_a_state_change_without_the_csrf_token_is_refused(secure_node: NodeProcess) -> None:
    session = signed_in(secure_node, "tech6", "technician")
    change = {"current_password": STRONG, "new_password": "Đồng-Bằng-Sông-9"}
    assert session.send("POST", "/api/auth/password", csrf=False, json=change).status_code == 403
    assert session.send("POST", "/api/auth/password", json=change).ok


def test_logout_ends_the_session(secure_node: NodeProcess) -> None:
    session = signed_in(secure_node, "tech7", "technician")
    assert session.send("POST", "/api/auth/logout").ok
    assert session.get("/api/auth/me").status_code == 401


def test_an_idle_session_is_logged_out(secure_node: NodeProcess) -> None:
    session = signed_in(secure_node, "tech8", "technician")
    assert session.get("/api/auth/me").ok
    with db(secure_node) as conn:  # idle for 31 minutes; the default limit is 30
        conn.execute("UPDATE app_session SET last_seen = ?", (time.time() - 31 * 60,))
    assert session.get("/api/auth/me").status_code == 401


def test_disabled_and_expired_accounts_cannot_sign_in(secure_node: NodeProcess) -> None:
    signed_in(secure_node, "tech9", "technician")
    admin = add_token(secure_node, "it", "admin")
    headers = {"Authorization": f"Bearer {admin}"}
    session = browser(secure_node)
    reply = session.http.put(session.url("/api/users/tech9"), json={"disabled": True},
                             headers=headers)  # fmt: skip
    assert reply.ok
    assert session.login("tech9", STRONG).status_code == 403
    expired = {"disabled": False, "expires_at": time.time() - 1}
    session.http.put(session.url("/api/users/tech9"), json=expired, headers=headers)
    assert session.login("tech9", STRONG).status_code == 403


def test_admins_must_enrol_and_then_use_a_second_factor(secure_node: NodeProcess) -> None:
    session = signed_in(secure_node, "boss", "admin")
    assert session.get("/api/auth/me").json()["next"] == "enrol_totp"
    assert session.get("/api/users").status_code == 403
    secret = session.get("/api/auth/totp/new").json()["secret"]
    bad = session.send("POST", "/api/auth/totp", json={"secret": secret, "code": "000000"})
    assert bad.status_code == 400
    assert session.send("POST", "/api/auth/totp",
                        json={"secret": secret, "code": totp.code(secret)}).ok  # fmt: skip
    assert session.get("/api/users").ok
    again = browser(secure_node)
    assert again.login("boss", STRONG).json()["totp_required"] is True
    assert again.login("boss", STRONG, totp=totp.code(secret)).ok


def test_api_tokens_are_kept_hashed_and_can_be_revoked(secure_node: NodeProcess) -> None:
    token = add_token(secure_node, "his", "referring")
    session = browser(secure_node)
    headers = {"Authorization": f"Bearer {token}"}
    assert session.get("/dicom-web/studies", headers=headers).ok
    with db(secure_node) as conn:
        stored = conn.execute("SELECT token_hash FROM api_token WHERE name = 'his'").fetchone()[0]
    assert token not in stored and len(stored) == 64
    result = cli("token", "revoke", "his", "--data", str(secure_node.data_dir))
    assert result.returncode == 0
    assert session.get("/api/auth/me", headers=headers).status_code == 401  # at once
    time.sleep(2.1)  # image reads trust a checked credential for 2 s (access.py)
    assert session.get("/dicom-web/studies", headers=headers).status_code == 401


def test_requests_without_credentials_are_refused(secure_node: NodeProcess) -> None:
    reply = browser(secure_node).get("/dicom-web/studies")
    assert reply.status_code == 401 and "sign in" in reply.json()["error"]


def test_usernames_are_letters_digits_and_underscore(secure_node: NodeProcess) -> None:
    result = cli("user", "add", "bad name", "--role", "admin", "--data", str(secure_node.data_dir))
    assert result.returncode == 2 and "letters, digits and underscore" in result.stderr
    result = cli("user", "add", "ok_name1", "--role", "admin", "--data", str(secure_node.data_dir))
    assert result.returncode == 0
    again = cli("user", "add", "ok_name1", "--role", "admin", "--data", str(secure_node.data_dir))
    assert again.returncode == 2 and "already exists" in again.stderr
