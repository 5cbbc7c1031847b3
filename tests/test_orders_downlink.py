"""The hub's orders reach the edge of their site (issue 6 item 3): an order placed at the hub
(HL7 from the HIS) for a modality of site clinic1 appears in clinic1's worklist with the exact
Vietnamese name and the hub's accession and study UID; an order for another site's modality does
not; a patient update and a cancel at the hub follow. Hub and enrolled edge are two processes
talking over mutual TLS; the modality is DCMTK findscu -W."""

from __future__ import annotations

import time

import requests

from tests.authn import add_token, cli
from tests.test_hub_enroll import hub_and_edge  # noqa: F401 - the fixture
from tests.test_uplink import wait_for
from tests.worklist_support import SPS, send_hl7, step_keys, worklist
from tools.hl7send import orm

TODAY = time.strftime("%Y%m%d")
NAME = "Nguyễn^Thị Hồng Nhung"
KEYS = ["PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID"]


def _device(hub, *fields: str) -> None:  # type: ignore[no-untyped-def]
    added = cli("ris", "add", "device", *fields, "--data", str(hub.data_dir))
    assert added.returncode == 0, added.stderr


def _mwl(edge, station: str):  # type: ignore[no-untyped-def]
    return worklist(edge, *KEYS, *step_keys(ScheduledStationAETitle=station,
                                            ScheduledProcedureStepStatus=""))  # fmt: skip


def test_orders_of_the_site_reach_its_worklist_and_follow_the_hub(hub_and_edge) -> None:  # noqa: F811
    hub, edge, _token, _port, admin = hub_and_edge
    _device(hub, "ae_title=US1", "modality=US", "room=P1", "site=clinic1", "name=Siêu âm 1")
    _device(hub, "ae_title=CT9", "modality=CT", "room=P9", "site=other_clinic")
    here = orm("DL-1", "DL0001", station="US1", modality="US", start=f"{TODAY}090000")
    elsewhere = orm("DL-2", "DL0002", patient="BN002^^^BVCR", station="CT9", modality="CT",
                    start=f"{TODAY}091500")  # fmt: skip
    assert send_hl7(hub, here)["code"] == "AA" and send_hl7(hub, elsewhere)["code"] == "AA"
    bearer = {"Authorization": f"Bearer {admin}"}
    hub_order = requests.get(f"{hub.url}/api/orders/DL0001", headers=bearer, timeout=10).json()

    # the site's order is in the edge's worklist, exactly as the hub has it
    wait_for(lambda: len(_mwl(edge, "US1").items) == 1, 60, "the order in the edge's MWL")
    answer = _mwl(edge, "US1")
    [item], [raw] = answer.items, answer.raw
    assert NAME.encode() in raw and str(item.PatientName) == NAME
    assert (item.AccessionNumber, item.PatientID) == ("DL0001", "BN001")
    assert item.StudyInstanceUID == hub_order["procedure"]["study_uid"]
    assert item[SPS][0].ScheduledProcedureStepStatus == "SCHEDULED"
    # ... and another site's order is not at this edge
    assert _mwl(edge, "CT9").items == []
    assert requests.get(f"{edge.url}/api/orders/DL0002", timeout=10).status_code == 404

    # a patient update at the hub follows
    renamed = {"name": "Nguyễn^Thị Hồng Nhung Mới", "birth_date": "1980-01-15"}
    reply = requests.put(f"{hub.url}/api/patients/BN001?issuer=BVCR", json=renamed,
                         headers=bearer, timeout=10)  # fmt: skip
    assert reply.status_code == 200, reply.text
    wait_for(lambda: "Mới" in str(_mwl(edge, "US1").items[0].PatientName), 60, "the new name")

    # a cancel at the hub takes it out of the edge's worklist
    assert send_hl7(hub, orm("DL-3", "DL0001", control="CA"))["code"] == "AA"
    wait_for(lambda: _mwl(edge, "US1").items == [], 60, "the cancel at the edge")
    local = requests.get(f"{edge.url}/api/orders/DL0001", timeout=10).json()
    assert local["status"] == "CANCELLED" and local["source"] == "HUB"
    assert not edge.health()["orders_downlink"]["last_error"]

    # the hub recorded what it handed to the site
    auditor = {"Authorization": f"Bearer {add_token(hub, 'kiem_toan', 'auditor')}"}
    events = requests.get(f"{hub.url}/api/audit", params={"action": "orders.pull"},
                          headers=auditor, timeout=10).json()  # fmt: skip
    assert {(e["actor"], e["object"]) for e in events} >= {("clinic1", "site:clinic1")}
