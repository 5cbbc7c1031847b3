"""The unmatched list in the console (RIS-3.8, FEAT-5.6): a study stored by DCMTK storescu with
an accession number no order has is listed with the reason; a technician links it to the
order with the page's form (JSON POST with the session's CSRF token, as console.js sends it);
it leaves the list and the order shows it. Roles without orders.write see no form and the
API refuses them; the waiting list's alert counts it and links to the page."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest

from tests.authn import Browser, signed_in
from tests.conftest import storescu
from tests.nodeproc import NodeProcess
from tools import gendata
from tools.hl7send import MllpClient, ack_fields, orm

PATIENT = "Nguyễn^Thị Hồng Nhung"


def wait(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(tmp_path_factory.mktemp("console_unmatched") / "data",
                       trusted_loopback=False).start()  # fmt: skip
    yield node
    node.stop()


@pytest.fixture(scope="module")
def study_uid(node: NodeProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A CT study whose accession number names no order, stored by storescu; and the order
    it belongs to (UM1, patient BN-UM1), sent by the HIS over HL7."""
    message = orm("UM-1", "UM1", patient="BN-UM1^^^BVCR", name=PATIENT, modality="CT")
    with MllpClient("127.0.0.1", node.hl7_port) as client:
        assert ack_fields(client.send(message.encode()))["code"] == "AA"
    out = tmp_path_factory.mktemp("unmatched_study")
    files = gendata.ct_series(out, count=2, rows=32, cols=32, patient_id="MOD-UM",
                              patient_name="NGUYEN THI HONG NHUNG",
                              study_uid=gendata.uid(7, "unmatched"))  # fmt: skip
    for path in files:
        ds = pydicom.dcmread(path)
        ds.AccessionNumber = "KHONG-CO"
        ds.save_as(path)
    result = storescu(node, *files)
    assert result.returncode == 0 and "E:" not in result.stderr, result.stderr
    return str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


def row_of(page: str, uid: str) -> str:
    found = re.search(rf'<tr data-study="{re.escape(uid)}">(.*?)</tr>', page, re.S)
    return found.group(1) if found else ""


def alert_of(user: Browser) -> str:
    """The unmatched alert over the waiting list's table, "" when there is none."""
    page = user.get("/orders").text
    found = re.search(r'<p class="alert" id="unmatched-alert".*?</p>', page, re.S)
    return found.group(0) if found else ""


def listed(user: Browser, uid: str) -> str:
    reply = user.get("/unmatched")
    assert reply.status_code == 200, reply.text
    return row_of(reply.text, uid)


def test_technician_links_an_unmatched_study_from_the_page(
    node: NodeProcess, study_uid: str
) -> None:
    technician = signed_in(node, "ktv_unmatched", "technician")
    row = wait(lambda: listed(technician, study_uid), "the study in the unmatched list")
    assert "Không có chỉ định nào có số tiếp nhận này" in row  # the reason, in Vietnamese
    assert "&#39;KHONG-CO&#39; names no order" in row  # and the domain's detail
    assert "MOD-UM" in row and "KHONG-CO" in row
    alert = wait(lambda: alert_of(technician), "the waiting list's alert")
    assert "Ca chụp chưa khớp với chỉ định: 1." in alert and 'href="/unmatched"' in alert

    page = technician.get("/unmatched").text
    form = re.search(r'<form class="link-form" data-api="([^"]+)">', row)
    assert form, row
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert csrf and csrf.group(1) == technician.csrf
    reply = technician.http.post(
        technician.url(html.unescape(form.group(1))), json={"accession": "UM1"},
        headers={"X-CSRF-Token": csrf.group(1), "Accept": "application/json"},
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert [s["study_uid"] for s in reply.json()["order"]["studies"]] == [study_uid]

    assert not listed(technician, study_uid)
    wait(lambda: not alert_of(technician), "the alert gone from the waiting list")
    order = technician.get("/api/orders/UM1").json()
    assert [(s["study_uid"], s["matched_by"]) for s in order["studies"]] == [(study_uid, "manual")]
    # the images are coerced to the order's patient: the order page's history shows the study
    viewer = f"/viewer?StudyInstanceUIDs={study_uid}"
    wait(lambda: viewer in technician.get("/orders/UM1").text, "the study in the order's history")


def test_roles_without_orders_write_see_no_form_and_are_refused(
    node: NodeProcess, study_uid: str, tmp_path: Path
) -> None:
    other = _another_unmatched(node, tmp_path)
    referring = signed_in(node, "bs_chidinh_um", "referring")
    row = wait(lambda: listed(referring, other), "the second study in the list")
    assert "link-form" not in row and "Không có chỉ định nào" in row
    reply = referring.send("POST", f"/api/unmatched/{other}/link", json={"accession": "UM1"})
    assert reply.status_code == 403, reply.text
    assert listed(referring, other)  # still unmatched

    receptionist = signed_in(node, "letan_um", "receptionist")  # has orders.write
    row = listed(receptionist, other)
    assert "link-form" in row and "/viewer?" not in row  # no images.read: no viewer link

    auditor = signed_in(node, "kiemtoan_um", "auditor")  # no orders.read
    assert auditor.get("/unmatched").status_code == 403
    assert 'href="/unmatched"' not in auditor.get("/audit").text  # not in the menu


def test_the_page_in_english(node: NodeProcess, study_uid: str, tmp_path: Path) -> None:
    other = _another_unmatched(node, tmp_path, "UM-EN")
    technician = signed_in(node, "ktv_um_en", "technician")
    technician.http.cookies.set("lang", "en")
    row = wait(lambda: listed(technician, other), "the study in the list")
    assert "No order has this accession number" in row and "Link to order" in row
    assert "Unmatched studies" in technician.get("/unmatched").text


def _another_unmatched(node: NodeProcess, out: Path, accession: str = "UM-OTHER") -> str:
    files = gendata.ct_series(out / accession, count=1, rows=32, cols=32, patient_id="MOD-UM2",
                              study_uid=gendata.uid(8, accession))  # fmt: skip
    ds = pydicom.dcmread(files[0])
    ds.AccessionNumber = accession
    ds.save_as(files[0])
    result = storescu(node, *files)
    assert result.returncode == 0 and "E:" not in result.stderr, result.stderr
    return str(ds.StudyInstanceUID)
