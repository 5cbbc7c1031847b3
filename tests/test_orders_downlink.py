"""The hub's orders reach the edge of their site (issue 6 item 3): an order placed at the hub
(HL7 from the HIS) for a modality of site clinic1 appears in clinic1's worklist with the exact
Vietnamese name and the hub's accession and study UID; an order for another site's modality does
not; a patient update and a cancel at the hub follow. Hub and enrolled edge are two processes
talking over mutual TLS; the modality is DCMTK findscu -W."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from pydicom.uid import generate_uid

from tests.authn import add_token, cli
from tests.hl7peer import HisListener, Received
from tests.nodeproc import free_port
from tests.test_hub_enroll import hub_and_edge, start_hub_and_edge  # noqa: F401 - the fixture
from tests.test_mpps import create, final, in_progress, modify
from tests.test_uplink import wait_for
from tests.worklist_support import (
    SPS,
    get_order,
    mpps_association,
    send_hl7,
    step_keys,
    worklist,
)
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


def test_the_edge_modality_s_progress_reaches_the_his_through_the_hub(
    node_factory, tmp_path: Path
) -> None:
    """HIS → hub → edge worklist → MPPS at the edge → hub → HIS: IN PROGRESS then COMPLETED
    arrive at the HIS's MLLP listener from the hub, once each."""
    his = HisListener(free_port()).start()
    destination = "\n".join([
        "[hl7]", "retry_initial_seconds = 0.2", "[[hl7.destinations]]", 'name = "his"',
        'host = "127.0.0.1"', f"port = {his.port}", 'message_type = "ORM^O01"',
    ]) + "\n"  # fmt: skip
    try:
        hub, edge, *_ = start_hub_and_edge(node_factory, tmp_path, hub_toml_extra=destination)
        _device(hub, "ae_title=CTMPPS", "modality=CT", "room=P2", "site=clinic1")
        message = orm("UP-1", "UP0001", station="CTMPPS", modality="CT", start=f"{TODAY}100000")
        assert send_hl7(hub, message)["code"] == "AA"
        at_edge = f"{edge.url}/api/orders/UP0001"
        wait_for(lambda: requests.get(at_edge, timeout=10).ok, 60, "the order at the edge")
        order = get_order(edge, "UP0001")
        uid = generate_uid()
        assoc = mpps_association(edge)
        try:
            assert create(assoc, in_progress(order), uid).Status == 0x0000
            assert modify(assoc, final("COMPLETED"), uid).Status == 0x0000
        finally:
            assoc.release()

        def states(got: list[Received]) -> list[str]:
            return [m.field("ORC", 5) for m in got if m.field("OBR", 18) == "UP0001"]

        his.wait_for(lambda got: states(got) == ["IP", "CM"])
        assert edge.health()["status_upstream"]["counts"] == {"sent": 2}
        time.sleep(1.5)  # nothing further arrives
        assert states(his.received) == ["IP", "CM"]
    finally:
        his.stop()
