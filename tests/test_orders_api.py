"""REST order API against a real node: the same rules as HL7, errors as 4xx JSON (RIS-6.1)."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from tests.conftest import config_args, mekong_cli
from tests.nodeproc import NodeProcess
from tests.test_hl7 import api, send
from tools.hl7send import orm

NAME = "Nguyễn^Thị Hồng Nhung"
UID_ROOT = "1.2.826.0.1.3680043.10.999"  # dicom.uid_root of this node (RIS-9.3)


@pytest.fixture(scope="module")
def ris(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    folder = tmp_path_factory.mktemp("rest")
    node = NodeProcess(
        folder / "data", extra_args=config_args(folder / "n.toml", workers=1, uid_root=UID_ROOT)
    )
    yield node.start()
    node.stop()


def new_order(accession: str = "", **step: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient": {"id": "BN100", "issuer": "BVCR", "name": NAME, "birth_date": "1980-01-15",
                    "sex": "F", "phone": "0901234567"},
        "visit": {"number": "V100", "patient_class": "I", "department": "KHOA_NOI"},
        "order": {"placer_number": f"HIS-{accession or 'auto'}", "priority": "HIGH",
                  "reason": "Đau ngực"},
        "procedure": {"service_code": "XQ001", "description": "Chụp X quang ngực thẳng"},
        "steps": [{"modality": "DX", "station_ae": "DX1", "start_date": "2026-11-26",
                   "start_time": "10:30", **step}],
    }  # fmt: skip
    if accession:
        body["order"]["accession"] = accession
    return body


def test_create_read_update_cancel(ris: NodeProcess) -> None:
    status, created = api(ris, "POST", "/api/orders", new_order("R1"))
    assert status == 201, created
    assert created["patient"]["name"].encode() == NAME.encode()
    assert created["patient"]["birth_date"] == "19800115" and created["priority"] == "HIGH"
    assert created["steps"][0]["start_time"] == "103000" and created["source"] == "REST"
    assert api(ris, "GET", "/api/orders/R1") == (200, created)

    status, changed = api(
        ris,
        "PUT",
        "/api/orders/R1",
        {"steps": [{"station_ae": "DX2"}], "order": {"priority": "STAT"}},
    )
    assert status == 200, changed
    assert changed["steps"][0]["station_ae"] == "DX2" and changed["priority"] == "STAT"
    assert changed["patient"]["name"] == NAME  # untouched

    status, arrived = api(ris, "POST", "/api/orders/R1/status", {"status": "ARRIVED"})
    assert (status, arrived["status"]) == (200, "ARRIVED")
    status, cancelled = api(ris, "POST", "/api/orders/R1/cancel")
    assert (status, cancelled["status"]) == (200, "CANCELLED")
    status, error = api(ris, "POST", "/api/orders/R1/cancel")
    assert (status, error["code"]) == (409, "ILLEGAL_TRANSITION") and "final" in error["error"]


def test_accession_assigned_when_absent_and_listing(ris: NodeProcess) -> None:
    status, created = api(ris, "POST", "/api/orders", new_order(modality="MR", station_ae="MR1"))
    assert status == 201, created
    accession = created["accession"]
    assert accession.startswith("MK") and created["steps"][0]["sps_id"] == accession
    study_uid = created["procedure"]["study_uid"]
    assert study_uid.startswith(f"{UID_ROOT}.") and len(study_uid) <= 64, study_uid
    status, listing = api(ris, "GET", "/api/orders?modality=MR&date=2026-11-26&station_ae=MR1")
    assert status == 200 and [o["accession"] for o in listing["orders"]] == [accession]
    assert api(ris, "GET", "/api/orders?status=CANCELLED&modality=MR")[1]["orders"] == []
    assert api(ris, "GET", "/api/orders?status=NOPE")[0] == 400


def test_patient_update_is_seen_by_orders_of_hl7(ris: NodeProcess) -> None:
    assert send(ris, orm("P-1", "R3", patient="BN300^^^BVCR"))["code"] == "AA"
    status, patient = api(ris, "PUT", "/api/patients/BN300?issuer=BVCR",
                          {"name": "Lê^Văn Đạt", "sex": "M"})  # fmt: skip
    assert status == 200 and patient["name"] == "Lê^Văn Đạt"
    assert api(ris, "GET", "/api/orders/R3")[1]["patient"]["name"] == "Lê^Văn Đạt"
    assert api(ris, "PUT", "/api/patients/NOBODY", {"name": "X"})[0] == 404


BAD = [
    ("not json", None, 400, ""),
    ("no patient id", {**new_order("B1"), "patient": {"name": NAME}}, 400, "patient.id"),
    ("bad date", new_order("B2", start_date="2026-13-01"), 400, "steps[0].start_date"),
    ("bad AE", new_order("B3", station_ae="A" * 17), 400, "steps[0].station_ae"),
    ("bad priority", {**new_order("B4"), "order": {"priority": "NOW"}}, 400, "order.priority"),
    ("bad sex", {**new_order("B5"), "patient": {"id": "X", "name": "A", "sex": "Q"}}, 400,
     "patient.sex"),
    ("number", {**new_order("B6"), "order": {"accession": 5}}, 400, "order.accession"),
    ("unknown key", {**new_order("B7"), "colour": "red"}, 400, "colour"),
    ("no steps", {**new_order("B8"), "steps": []}, 400, "steps"),
    ("duplicate", new_order("R1"), 409, "order.accession"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "field"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])  # fmt: skip
def test_bad_requests_get_4xx_json_and_change_nothing(
    ris: NodeProcess, body: Any, status: int, field: str
) -> None:
    if body is None:
        request = urllib.request.Request(f"{ris.url}/api/orders", data=b"{oops", method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 400
        return
    api(ris, "POST", "/api/orders", new_order("R1"))  # the duplicate case needs it
    got, error = api(ris, "POST", "/api/orders", body)
    assert got == status, error
    assert error["error"] and error.get("field", "") == field
    for accession in ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8"):
        assert api(ris, "GET", f"/api/orders/{accession}")[0] == 404


def test_unknown_order_is_404(ris: NodeProcess) -> None:
    status, error = api(ris, "GET", "/api/orders/NOPE")
    assert (status, error["code"]) == (404, "NOT_FOUND")
    assert api(ris, "POST", "/api/orders/NOPE/cancel")[0] == 404
    assert api(ris, "PUT", "/api/orders/NOPE", {"order": {"priority": "LOW"}})[0] == 404


def _token(data_dir: Any, name: str, role: str) -> str:
    created = mekong_cli("token", "create", name, "--role", role, "--data", str(data_dir))
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def _call(node: NodeProcess, method: str, path: str, token: str = "", body: Any = None) -> int:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{node.url}{path}", data=data, method=method,
                                     headers=headers)  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_permissions_and_audit(node_factory, tmp_path: Any) -> None:
    """orders.read / orders.write per role (SEC-6); every change in the audit trail."""
    node: NodeProcess = node_factory(
        trusted_loopback=False, extra_args=config_args(tmp_path / "n.toml", workers=1)
    )
    receptionist = _token(node.data_dir, "his", "receptionist")
    referring = _token(node.data_dir, "doctor", "referring")
    node.start()
    assert _call(node, "GET", "/api/orders") == 401
    assert _call(node, "POST", "/api/orders", referring, new_order("S1")) == 403
    assert _call(node, "POST", "/api/orders", receptionist, new_order("S1")) == 201
    assert _call(node, "GET", "/api/orders/S1", referring) == 200
    assert _call(node, "POST", "/api/orders/S1/cancel", referring) == 403
    assert _call(node, "POST", "/api/orders/S1/cancel", receptionist) == 200
    assert _call(node, "GET", "/api/hl7/messages", receptionist) == 403
    node.stop()  # flushes the audit queue
    with closing(sqlite3.connect(node.data_dir / "index.db")) as db:
        events = db.execute("SELECT actor, action, object FROM audit_event").fetchall()
    assert ("his", "order.create", "S1") in events and ("his", "order.status", "S1") in events


def test_openapi_describes_the_ris_routes(ris: NodeProcess) -> None:
    status, spec = api(ris, "GET", "/api/openapi.json")
    assert status == 200
    paths = spec["paths"]
    create = paths["/api/orders"]["post"]
    assert create["x-permission"] == "orders.write"
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/OrderInput")  # fmt: skip
    assert paths["/api/orders"]["get"]["x-permission"] == "orders.read"
    assert paths["/api/hl7/messages"]["get"]["x-permission"] == "system.read"
    assert {"/api/orders/{accession}/cancel", "/api/patients/{patient_id}",
            "/api/hl7/messages/{id}"} <= set(paths)  # fmt: skip
    text = json.dumps(spec)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.removeprefix("#/components/schemas/") in spec["components"]["schemas"], ref
