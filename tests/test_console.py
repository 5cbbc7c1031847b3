"""The web console against a real node: sign-in flows, studies, languages, roles, idle logout,
admin pages with a C-ECHO to DCMTK storescp, the log viewer, security headers (issue 7)."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
import requests

from mekong.shared.auth import totp
from tests.authn import STRONG, add_token, add_user, browser, db, signed_in
from tests.browser import chromium
from tests.conftest import dcmtk_tool, storescu
from tests.nodeproc import NodeProcess, free_port, peer_env
from tools import gendata

TABLET = {"width": 1024, "height": 768}
HTML = {"Accept": "text/html"}
TO_SIGN_IN = re.compile(r"/login\?next=(/|%2F)studies$")
PAGES = ["/studies", "/admin/status", "/admin/aes", "/admin/logs", "/admin/config",
         "/admin/users", "/login"]  # fmt: skip


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A node that trusts nobody, with one Vietnamese study (shared by this module's tests;
    each uses its own user names)."""
    root = tmp_path_factory.mktemp("console")
    node = NodeProcess(root / "data", trusted_loopback=False).start()
    result = storescu(node, *gendata.vietnamese_patient(root / "vn"))
    assert result.returncode == 0, result.stderr
    yield node
    node.stop()


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[int]:
    """DCMTK storescp (AE STORESCP) on a free port."""
    port = free_port()
    process = subprocess.Popen(
        [dcmtk_tool("storescp"), "-aet", "STORESCP", "-od", str(tmp_path), str(port)],
        env=peer_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def _csp_watch(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Script errors and CSP refusals (not HTTP errors: the tests cause some on purpose)."""
    problems: list[str] = []

    def seen(message) -> None:  # type: ignore[no-untyped-def]
        if message.type == "error" and "Failed to load resource" not in message.text:
            problems.append(message.text)

    page.on("console", seen)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def _sign_in(page, node: NodeProcess, name: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#login input[name=username]", name)
    page.fill("#login input[name=password]", password)
    page.click("#login button[type=submit]")


def test_technician_signs_in_finds_a_study_switches_language_and_signs_out(
    console: NodeProcess, tmp_path: Path
) -> None:
    study_uid = pydicom.dcmread(gendata.vietnamese_patient(tmp_path / "vn")[0]).StudyInstanceUID
    password = add_user(console, "ktv_an", "technician")
    with chromium() as engine:
        page = engine.new_page(viewport=TABLET)
        problems = _csp_watch(page)
        page.goto(f"{console.url}/studies")
        page.wait_for_url(TO_SIGN_IN)
        assert page.get_attribute("html", "lang") == "vi"
        assert page.inner_text("h1") == "Đăng nhập"

        _sign_in(page, console, "ktv_an", password)
        page.wait_for_url(re.compile(r"/login/next\?next=(/|%2F)studies$"))
        page.fill("input[name=current_password]", password)
        page.fill("input[name=new_password]", "matkhau12")  # the API's policy message is shown
        page.fill("input[data-match]", "matkhau12")
        page.click("#password button[type=submit]")
        page.wait_for_selector("#password .result.error")
        assert "needs" in page.inner_text("#password .result")
        page.fill("input[name=new_password]", STRONG)
        page.fill("input[data-match]", STRONG)
        page.click("#password button[type=submit]")
        page.wait_for_url("**/studies")

        assert "Nguyễn Thị Hồng Nhung" in page.inner_text("#studies")
        viewer = page.locator("#studies a.viewer").first
        assert viewer.get_attribute("href") == f"/viewer?StudyInstanceUIDs={study_uid}"
        assert viewer.get_attribute("target") == "_blank"
        phone = page.locator("#studies a.phone").first
        assert phone.get_attribute("href") == f"/m?StudyInstanceUID={study_uid}"
        assert page.locator("nav.menu a[href='/admin/users']").count() == 0

        page.fill("input[name=name]", "nguyen hong")  # accent-folded, word prefixes
        page.click("form.search button[type=submit]")
        page.wait_for_url("**name=nguyen+hong**")
        assert page.locator("#studies tbody tr").count() == 1
        page.fill("input[name=name]", "tran")
        page.click("form.search button[type=submit]")
        page.wait_for_url("**name=tran**")
        assert page.inner_text("#studies tbody") == "Không có ca chụp nào phù hợp."

        page.click("#lang")
        page.wait_for_function("() => document.documentElement.lang === 'en'")
        assert page.inner_text("h1") == "Studies" and "name=tran" in page.url
        page.click("#lang")
        page.wait_for_function("() => document.documentElement.lang === 'vi'")
        assert page.inner_text("h1") == "Ca chụp"

        page.click("#logout")
        page.wait_for_url("**/login")
        page.goto(f"{console.url}/studies")
        page.wait_for_url(TO_SIGN_IN)
        assert not problems, problems  # no CSP refusal, no script error


def test_an_idle_console_session_is_signed_out(console: NodeProcess) -> None:
    signed_in(console, "ktv_binh", "technician")  # password changed to STRONG
    with chromium() as engine:
        page = engine.new_page(viewport=TABLET)
        page.goto(f"{console.url}/login")
        _sign_in(page, console, "ktv_binh", STRONG)
        page.wait_for_url(f"{console.url}/studies")
        with db(console) as conn:  # idle for 31 minutes; the default limit is 30
            conn.execute(
                "UPDATE app_session SET last_seen = ? WHERE user_fk = "
                "(SELECT id FROM app_user WHERE username = 'ktv_binh')",
                (time.time() - 31 * 60,),
            )
        page.reload()
        page.wait_for_url(TO_SIGN_IN)


def test_background_refreshes_do_not_keep_a_session_alive(console: NodeProcess) -> None:
    session = signed_in(console, "ktv_chi", "technician")

    def last_seen_after(headers: dict[str, str]) -> float:
        with db(console) as conn:
            conn.execute("UPDATE app_session SET last_seen = ? WHERE user_fk = (SELECT id FROM "
                         "app_user WHERE username = 'ktv_chi')", (time.time() - 60,))  # fmt: skip
        assert session.get("/api/auth/me", headers=headers).ok
        with db(console) as conn:
            row = conn.execute("SELECT last_seen FROM app_session WHERE user_fk = (SELECT id "
                               "FROM app_user WHERE username = 'ktv_chi')").fetchone()  # fmt: skip
        return float(row[0])

    assert last_seen_after({"X-Background": "1"}) < time.time() - 50
    assert last_seen_after({}) > time.time() - 10


def test_menu_and_pages_follow_the_role(console: NodeProcess) -> None:
    receptionist = signed_in(console, "letan_an", "receptionist")
    home = receptionist.get("/", headers=HTML)
    assert home.status_code == 200 and 'href="/orders"' in home.text
    assert 'href="/studies"' not in home.text and 'href="/admin/hl7"' not in home.text
    for path in ("/admin/status", "/admin/users", "/audit", "/studies", "/admin/hl7"):
        assert receptionist.get(path, headers=HTML).status_code == 403, path
    auditor = signed_in(console, "kiemtra_an", "auditor")
    audit = auditor.get("/audit", headers=HTML)
    assert audit.status_code == 200
    assert 'href="/audit"' in audit.text and 'href="/admin/status"' in audit.text
    assert 'href="/admin/users"' not in audit.text and 'href="/studies"' not in audit.text
    assert auditor.get("/admin/users", headers=HTML).status_code == 403
    assert auditor.get("/", headers=HTML, allow_redirects=False).headers["Location"] == (
        "/admin/status"
    )


def test_console_pages_carry_the_security_headers(console: NodeProcess) -> None:
    headers = {"Authorization": f"Bearer {add_token(console, 'console_it', 'admin')}"}
    for path in PAGES:
        reply = requests.get(f"{console.url}{path}", headers=headers, timeout=30)
        assert reply.status_code == 200, path
        policy = reply.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self'" in policy and "default-src 'none'" in policy, path
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Referrer-Policy"] == "same-origin"


def test_configuration_page_shows_settings_without_secrets(console: NodeProcess) -> None:
    token = add_token(console, "config_reader", "auditor")
    reply = requests.get(f"{console.url}/admin/config",
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
    assert reply.ok
    assert "dicom.ae_title" in reply.text and "MEKONG" in reply.text
    assert str(console.dicom_port) in reply.text
    assert token not in reply.text and "mekong_session" not in reply.text


def test_admin_enrols_a_second_factor_manages_users_and_tests_aes(
    console: NodeProcess, storescp: int
) -> None:
    password = add_user(console, "quantri", "admin")
    with chromium() as engine:
        page = engine.new_page(viewport=TABLET)
        problems = _csp_watch(page)
        page.goto(f"{console.url}/login")
        _sign_in(page, console, "quantri", password)
        page.wait_for_url("**/login/next**")
        page.fill("input[name=current_password]", password)
        page.fill("input[name=new_password]", STRONG)
        page.fill("input[data-match]", STRONG)
        page.click("#password button[type=submit]")
        page.wait_for_selector(".qr svg path")  # TOTP enrolment: QR code and the key as text
        secret = page.inner_text("#totp-secret")
        page.fill("#totp input[name=code]", totp.code(secret))
        page.click("#totp button[type=submit]")
        page.wait_for_url(f"{console.url}/studies")

        page.goto(f"{console.url}/admin/users")
        page.fill("#add-user input[name=username]", "letan_moi")
        page.select_option("#add-user select[name=role]", "receptionist")
        page.click("#add-user button[type=submit]")
        page.wait_for_selector("#add-user .result.ok code")
        one_time = page.inner_text("#add-user .result code")
        page.wait_for_selector("tr[data-user=letan_moi]")
        assert browser(console).login("letan_moi", one_time).json()["next"] == "change_password"

        page.goto(f"{console.url}/admin/aes")
        for title, port in (("STORESCP", storescp), ("CLOSED", free_port())):
            page.fill("#add-ae input[name=title]", title)
            page.fill("#add-ae input[name=host]", "127.0.0.1")
            page.fill("#add-ae input[name=port]", str(port))
            page.set_checked("#add-ae input[name=ascii_worklist]", title == "CLOSED")
            page.click("#add-ae button[type=submit]")
            page.wait_for_selector(f"tr[data-ae={title}]")
        assert "không dấu" in page.inner_text("tr[data-ae=CLOSED] .worklist-names")
        assert "UTF-8" in page.inner_text("tr[data-ae=STORESCP] .worklist-names")
        page.click("tr[data-ae=STORESCP] button.echo")
        page.wait_for_selector("tr[data-ae=STORESCP] .result.ok")
        assert "thành công" in page.inner_text("tr[data-ae=STORESCP] .result")
        page.click("tr[data-ae=CLOSED] button.echo")
        page.wait_for_selector("tr[data-ae=CLOSED] .result.error")
        assert "connection refused" in page.inner_text("tr[data-ae=CLOSED] .result")

        page.goto(f"{console.url}/admin/logs")
        page.select_option("#log-level select[name=level]", "DEBUG")
        page.click("#log-level button[type=submit]")
        page.wait_for_function(
            "() => document.querySelector('#lines').innerText.includes('log level set to DEBUG')"
        )

        page.click("#logout")  # the second factor is asked for at the next sign-in
        page.wait_for_url("**/login")
        _sign_in(page, console, "quantri", STRONG)
        page.wait_for_selector("#totp-row:not([hidden])")
        page.fill("#login input[name=totp]", totp.code(secret))
        page.click("#login button[type=submit]")
        page.wait_for_url(f"{console.url}/studies")
        assert not problems, problems
    with db(console) as conn:
        echoes = conn.execute("SELECT object, outcome FROM audit_event WHERE action = 'aes.echo'")
        assert sorted(echoes.fetchall()) == [("CLOSED", "failure"), ("STORESCP", "success")]


def test_sixth_sign_in_attempt_shows_the_challenge(console: NodeProcess) -> None:
    signed_in(console, "ktv_dung", "technician")
    with chromium() as engine:
        page = engine.new_page(viewport=TABLET)
        page.goto(f"{console.url}/login")
        for attempt in range(6):
            with page.expect_response("**/api/auth/login"):
                _sign_in(page, console, "ktv_dung", f"Wrong-Password-{attempt}")
        page.wait_for_selector("#challenge:not([hidden])")
        assert page.get_attribute("#challenge-image", "src").startswith("data:image/png;base64,")
        assert "ký tự trong hình" in page.inner_text("#login .result")


def test_auditor_searches_the_trail_and_checks_the_chain(console: NodeProcess) -> None:
    signed_in(console, "kiemtra_binh", "auditor")
    with chromium() as engine:
        page = engine.new_page(viewport=TABLET)
        problems = _csp_watch(page)
        page.goto(f"{console.url}/audit")
        page.wait_for_url(re.compile(r"/login\?next=(/|%2F)audit$"))
        _sign_in(page, console, "kiemtra_binh", STRONG)
        page.wait_for_url(f"{console.url}/audit")
        page.fill("form.search input[name=actor]", "kiemtra_binh")
        page.select_option("form.search select[name=outcome]", "success")
        page.click("form.search button[type=submit]")
        page.wait_for_url("**actor=kiemtra_binh**")
        assert "login" in page.inner_text("#events tbody")
        assert "actor=kiemtra_binh" in (page.get_attribute("#export", "href") or "")
        page.click("#verify")
        page.wait_for_selector(".row .result.ok")
        assert "intact" in page.inner_text(".row .result")
        assert not problems, problems


def test_openapi_describes_the_admin_routes(console: NodeProcess) -> None:
    spec = requests.get(f"{console.url}/api/openapi.json", timeout=30).json()
    echo = spec["paths"]["/api/admin/aes/{title}/echo"]["post"]
    assert echo["x-permission"] == "system.configure"
    assert echo["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EchoResult"
    }
    assert "requestBody" in spec["paths"]["/api/admin/aes/{title}"]["put"]
    assert spec["paths"]["/api/admin/logs"]["get"]["x-permission"] == "system.read"
    assert not any(path.startswith(("/admin", "/studies", "/login")) for path in spec["paths"])
    for name in ("RemoteAE", "EchoResult", "LogLine"):
        assert name in spec["components"]["schemas"]
