"""Console part 2 in Chromium: the waiting list updates live when an ORM^O01 arrives over MLLP,
a receptionist assigns a room, marks the patient arrived and prints the order's label (PDF,
PNG); the order detail shows the
patient's stored study with a viewer link; the HL7 message log page finds the message."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator

import pytest

from tests.authn import STRONG, db, signed_in
from tests.browser import chromium
from tests.conftest import storescu
from tests.nodeproc import NodeProcess
from tools import gendata
from tools.hl7send import MllpClient, ack_fields, orm

TABLET = {"width": 1024, "height": 768}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    root = tmp_path_factory.mktemp("console_orders")
    node = NodeProcess(root / "data", trusted_loopback=False).start()
    result = storescu(node, *gendata.vietnamese_patient(root / "vn"))  # patient VN0001
    assert result.returncode == 0, result.stderr
    with db(node) as conn:
        _room(conn)
    yield node
    node.stop()


def _room(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO ris_room (code, name, department, updated_at) "
                 "VALUES ('P12', 'Phòng X quang 12', 'CDHA', 0)")  # fmt: skip


def _send_order(node: NodeProcess, accession: str) -> None:
    message = orm(f"CTL-{accession}", accession, patient="VN0001^^^BVCR")
    with MllpClient("127.0.0.1", node.hl7_port) as client:
        assert ack_fields(client.send(message.encode()))["code"] == "AA"


def _sign_in(page, node: NodeProcess, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{node.url}/login")
    page.fill("#login input[name=username]", name)
    page.fill("#login input[name=password]", STRONG)
    page.click("#login button[type=submit]")


def test_receptionist_sees_an_hl7_order_arrive_assigns_a_room_and_marks_it_arrived(
    node: NodeProcess,
) -> None:
    signed_in(node, "letan_live", "receptionist")
    with chromium() as engine:
        page = engine.new_page(viewport=TABLET)
        _sign_in(page, node, "letan_live")
        page.wait_for_url(re.compile(r"/orders$"))
        assert page.inner_text("h1") == "Danh sách chờ"
        assert page.inner_text("#waiting tbody") == "Không có ai đang chờ."
        time.sleep(0.5)  # the event stream is open
        _send_order(node, "LIVE001")
        row = page.locator("#waiting tr[data-accession=LIVE001]")
        row.wait_for(timeout=10_000)  # no reload: SSE + htmx
        assert "Nguyễn Thị Hồng Nhung" in row.inner_text()
        assert row.locator(".status").inner_text() == "đã hẹn"

        row.locator(".room-form select").select_option("P12")
        row.locator(".room-form button").click()
        _wait_cell(page, "room", "P12")
        page.locator("#waiting tr[data-accession=LIVE001] button.arrived").click()
        _wait_cell(page, "status", "đã đến")

        page.goto(f"{node.url}/orders/LIVE001")  # the order's label (RIS-3.3, FEAT-5)
        button = page.locator("#print-label")
        assert button.inner_text() == "In nhãn"
        with page.context.expect_event("response", lambda r: "/label.pdf" in r.url) as got:
            button.click()
        answer = got.value
        assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
        pdf = page.request.get(f"{node.url}/api/orders/LIVE001/label.pdf").body()
        assert pdf.startswith(b"%PDF") and b"/MediaBox" in pdf
        href = page.locator("#label-png").get_attribute("href") or ""
        picture = page.request.get(node.url + href)
        assert picture.ok and picture.body().startswith(b"\x89PNG")


def _wait_cell(page, cell: str, text: str) -> None:  # type: ignore[no-untyped-def]
    script = "([c, t]) => document.querySelector(`#waiting tr[data-accession=LIVE001] .${c}`)"
    page.wait_for_function(script + "?.textContent === t", arg=[cell, text], timeout=10_000)


def test_order_detail_shows_the_patients_studies_with_viewer_links(node: NodeProcess) -> None:
    _send_order(node, "HIST001")
    technician = signed_in(node, "ktv_hist", "technician")
    page = technician.get("/orders/HIST001", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "Lịch sử chẩn đoán hình ảnh" in page.text
    assert re.search(r'class="button viewer" href="/viewer\?StudyInstanceUIDs=[0-9.]+"', page.text)
    assert 'id="compare"' in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_reject_with_a_reason_is_audited_and_leaves_the_list(node: NodeProcess) -> None:
    _send_order(node, "REJ001")
    receptionist = signed_in(node, "letan_rej", "receptionist")
    reply = receptionist.send("POST", "/api/orders/REJ001/cancel", json={"reason": "Trùng"})
    assert reply.ok and reply.json()["status"] == "CANCELLED"
    assert 'data-accession="REJ001"' not in receptionist.get("/orders/table").text
    assert "Trùng" in _audit_detail(node, "REJ001")


def _audit_detail(node: NodeProcess, accession: str) -> str:
    """The audit detail of the order's status change (the trail is written in the background)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db(node) as conn:
            row = conn.execute("SELECT detail FROM audit_event WHERE action = 'order.status' "
                               "AND object = ?", (accession,)).fetchone()  # fmt: skip
        if row:
            return str(row[0])
        time.sleep(0.2)
    return ""


def test_hl7_message_log_page_finds_a_message(node: NodeProcess) -> None:
    _send_order(node, "LOG001")
    admin = signed_in(node, "qtv_hl7", "auditor")
    page = admin.get("/admin/hl7?control_id=CTL-LOG001", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "CTL-LOG001" in page.text and "ORM^O01" in page.text
    assert "CTL-LIVE001" not in page.text
