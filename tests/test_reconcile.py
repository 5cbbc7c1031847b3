"""Reconciliation of stored studies with orders against a real node and real peers (DCMTK
storescu / getscu / findscu, dicomweb-client, a test MLLP listener as the HIS): RIS-3.8,
FLOW-1/2, PACS-6 (PIR: ADT^A08 / ADT^A40 on stored images), RIS-6.2 (images available)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.conftest import (
    assert_archive_consistent,
    dcmtk,
    index_digests,
    mekong_cli,
    storescu,
)
from tests.dicomweb_support import client
from tests.hl7peer import HisListener
from tests.nodeproc import AE_TITLE, NodeProcess, free_port
from tests.test_dimse_dcmtk import find
from tests.test_hl7 import NAME, api, send
from tools import gendata
from tools.hl7send import orm, segment

MODALITY_NAME = "BENH NHAN^MAY CHUP"  # what an old modality types, no accents


def wait(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def his() -> Iterator[HisListener]:
    listener = HisListener(free_port()).start()
    yield listener
    listener.stop()


@pytest.fixture(scope="module")
def ris(tmp_path_factory: pytest.TempPathFactory, his: HisListener) -> Iterator[NodeProcess]:
    """Two DICOM processes (the default): stores committed by the worker are found by polling."""
    folder = tmp_path_factory.mktemp("recon")
    (folder / "n.toml").write_text(
        "[hl7]\nretry_initial_seconds = 0.2\nretry_max_seconds = 1.0\n"
        "[recon]\ncomplete_after_idle_seconds = 8\n"
        f'[[hl7.destinations]]\nname = "his"\nhost = "127.0.0.1"\nport = {his.port}\n'
    )
    node = NodeProcess(folder / "data", extra_args=["--config", str(folder / "n.toml")])
    yield node.start()
    node.stop()


def study(out: Path, patient_id: str, count: int = 2, **attributes: Any) -> list[Path]:
    """A small CT study as an old modality sends it: its own patient name and ID, and
    whatever else is given (AccessionNumber, RequestAttributesSequence, dates)."""
    files = gendata.ct_series(out, count=count, rows=32, cols=32, patient_id=patient_id,
                              patient_name=MODALITY_NAME,
                              study_uid=gendata.uid(0, out.name))  # fmt: skip
    for path in files:
        ds = pydicom.dcmread(path)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        ds.save_as(path)
    return files


def store(node: NodeProcess, files: list[Path], aet: str = "STORESCU") -> str:
    result = storescu(node, *files, aet=aet)
    assert result.returncode == 0 and "E:" not in result.stderr, result.stderr
    return str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


def order(node: NodeProcess, accession: str) -> dict[str, Any]:
    status, body = api(node, "GET", f"/api/orders/{accession}")
    assert status == 200, body
    return body


def metadata(node: NodeProcess, study_uid: str) -> list[Dataset]:
    found = client(node).retrieve_study_metadata(study_uid)
    return [Dataset.from_json(m, lambda *_: b"") for m in found]


def coerced(node: NodeProcess, study_uid: str, name: str, count: int) -> list[Dataset]:
    """Wait until every instance of the study (read back by WADO-RS) carries ``name``."""

    def check() -> list[Dataset] | None:
        found = metadata(node, study_uid)
        done = [d for d in found if str(d.PatientName) == name]
        return found if len(found) == count and len(done) == count else None

    return wait(check, f"{study_uid} to carry {name}")


def unmatched(node: NodeProcess) -> dict[str, dict[str, Any]]:
    status, body = api(node, "GET", "/api/unmatched?limit=1000")
    assert status == 200, body
    return {s["study_uid"]: s for s in body["studies"]}


def get_files(node: NodeProcess, study_uid: str, out: Path) -> list[Path]:
    out.mkdir()
    result = dcmtk("getscu", "-S", "-aec", AE_TITLE, "-od", str(out), "127.0.0.1",
                   str(node.dicom_port), "-k", "QueryRetrieveLevel=STUDY",
                   "-k", f"StudyInstanceUID={study_uid}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return sorted(out.iterdir())


def test_study_with_the_accession_is_linked_and_coerced(
    ris: NodeProcess, his: HisListener, tmp_path: Path
) -> None:
    assert send(ris, orm("RC-1", "RC1", patient="BN-RC1^^^BVCR"))["code"] == "AA"
    study_uid = store(ris, study(tmp_path / "rc1", "MOD-RC1", count=3, AccessionNumber="RC1"))

    linked = wait(lambda: order(ris, "RC1")["studies"], "the study under the order")
    assert [s["study_uid"] for s in linked] == [study_uid]
    assert linked[0]["matched_by"] == "accession"
    for ds in coerced(ris, study_uid, NAME, 3):
        assert (ds.PatientID, ds.IssuerOfPatientID, ds.AccessionNumber) == ("BN-RC1", "BVCR", "RC1")
        assert (ds.PatientBirthDate, ds.PatientSex) == ("19800115", "F")
        [history] = ds.OriginalAttributesSequence
        [before] = history.ModifiedAttributesSequence
        assert (str(before.PatientName), before.PatientID) == (MODALITY_NAME, "MOD-RC1")
        assert "AccessionNumber" not in before and before.IssuerOfPatientID == ""  # was right
        assert history.ReasonForTheAttributeModification == "COERCE"
        assert (history.ModifyingSystem, history.SourceOfPreviousValues) == ("MEKONG", "STORESCU")
        assert ds.RequestAttributesSequence[0].ScheduledProcedureStepID == "RC1"

    for path in get_files(ris, study_uid, tmp_path / "get"):  # DICOM retrieve, byte for byte
        raw = path.read_bytes()
        assert NAME.encode() in raw and MODALITY_NAME.encode() in raw
        assert pydicom.dcmread(path).SpecificCharacterSet == "ISO_IR 192"
    assert [str(s.StudyInstanceUID) for s in find(ris, "STUDY", "PatientID=BN-RC1",
                                                  "StudyInstanceUID")] == [study_uid]  # fmt: skip
    assert find(ris, "STUDY", "PatientID=MOD-RC1", "StudyInstanceUID") == []
    assert_archive_consistent(ris.data_dir)  # old versions released, counters right

    wanted = {"IN_PROGRESS", "IMAGES_AVAILABLE"}
    his.wait_for(lambda got: {m.field("ORC", 16).split("^")[0] for m in got
                              if m.field("OBR", 18) == "RC1"} >= wanted)  # fmt: skip
    images = next(m for m in his.received if m.field("ORC", 16).startswith("IMAGES_AVAILABLE"))
    assert images.field("OBR", 25) == "R" and images.field("ZDS", 1).startswith(study_uid)
    assert f"/viewer?StudyInstanceUIDs={study_uid}" in images.field("OBX", 5)


def test_more_images_later_join_the_order_and_are_coerced(ris: NodeProcess, tmp_path: Path) -> None:
    assert send(ris, orm("RC-2", "RC2", patient="BN-RC2^^^BVCR"))["code"] == "AA"
    first = study(tmp_path / "rc2", "MOD-RC2", count=2, AccessionNumber="RC2")
    study_uid = store(ris, first)
    coerced(ris, study_uid, NAME, 2)
    second = gendata.ct_series(tmp_path / "rc2b", count=2, rows=32, cols=32,
                               patient_id="MOD-RC2", patient_name=MODALITY_NAME,
                               study_uid=study_uid, series_number=2)  # fmt: skip
    store(ris, second)
    coerced(ris, study_uid, NAME, 4)
    assert order(ris, "RC2")["studies"][0]["num_instances"] == 4


def test_study_without_a_usable_key_is_unmatched_then_linked_by_hand(
    ris: NodeProcess, tmp_path: Path
) -> None:
    no_key = store(ris, study(tmp_path / "nokey", "MOD-NK", AccessionNumber=""))
    unknown = store(ris, study(tmp_path / "unknown", "MOD-UK", AccessionNumber="NO-SUCH"))
    listed = wait(lambda: (u := unmatched(ris)).get(no_key) and u.get(unknown) and u, "unmatched")
    assert listed[no_key]["reason_code"] == "NO_KEY" and "no Accession Number" in listed[no_key][
        "reason"]  # fmt: skip
    assert listed[unknown]["reason_code"] == "UNKNOWN_KEY" and "'NO-SUCH'" in listed[unknown][
        "reason"]  # fmt: skip
    assert listed[no_key]["patient_id"] == "MOD-NK" and listed[no_key]["num_instances"] == 2
    printed = mekong_cli("unmatched", "list", "--data", str(ris.data_dir)).stdout
    assert f"{no_key}  MOD-NK" in printed and "UNKNOWN_KEY" in printed

    assert send(ris, orm("RC-3", "RC3", patient="BN-RC3^^^BVCR"))["code"] == "AA"
    path = f"/api/unmatched/{no_key}/link"
    assert api(ris, "POST", path, {})[0] == 400
    assert api(ris, "POST", path, {"accession": "NOPE"})[0] == 404
    assert api(ris, "POST", "/api/unmatched/1.2.3.4/link", {"accession": "RC3"})[0] == 404
    status, body = api(ris, "POST", path, {"accession": "RC3"})
    assert status == 200 and body["coercion"] == "queued", body
    assert [s["study_uid"] for s in body["order"]["studies"]] == [no_key]
    assert body["order"]["studies"][0]["matched_by"] == "manual"
    status, again = api(ris, "POST", path, {"accession": "RC3"})
    assert status == 409 and again["code"] == "ILLEGAL_TRANSITION"

    for ds in coerced(ris, no_key, NAME, 2):
        assert ds.PatientID == "BN-RC3" and ds.AccessionNumber == "RC3"
        before = ds.OriginalAttributesSequence[0].ModifiedAttributesSequence[0]
        assert before.PatientID == "MOD-NK" and before.AccessionNumber == ""
    assert no_key not in unmatched(ris) and unknown in unmatched(ris)


def test_a_study_stored_before_its_order_is_linked_when_the_order_arrives(
    ris: NodeProcess, tmp_path: Path
) -> None:
    early = store(ris, study(tmp_path / "early", "MOD-EA", AccessionNumber="RC4"))
    wait(lambda: early in unmatched(ris), "the study in the unmatched list")
    assert send(ris, orm("RC-4", "RC4", patient="BN-RC4^^^BVCR"))["code"] == "AA"
    coerced(ris, early, NAME, 2)
    assert [s["study_uid"] for s in order(ris, "RC4")["studies"]] == [early]


def test_study_sent_by_stow_rs_is_linked_too(ris: NodeProcess, tmp_path: Path) -> None:
    assert send(ris, orm("RC-12", "RC12", patient="BN-RC12^^^BVCR"))["code"] == "AA"
    files = study(tmp_path / "stow", "MOD-ST", AccessionNumber="RC12")
    client(ris).store_instances([pydicom.dcmread(f) for f in files])
    uid = str(pydicom.dcmread(files[0]).StudyInstanceUID)
    for ds in coerced(ris, uid, NAME, 2):
        assert ds.PatientID == "BN-RC12"
        assert ds.OriginalAttributesSequence[0].SourceOfPreviousValues.startswith("STOW")


def test_sps_id_in_request_attributes_links(ris: NodeProcess, tmp_path: Path) -> None:
    assert send(ris, orm("RC-5", "RC5", patient="BN-RC5^^^BVCR"))["code"] == "AA"
    request = Dataset()
    request.ScheduledProcedureStepID = "RC5"
    request.RequestedProcedureID = "RC5"
    uid = store(ris, study(tmp_path / "sps", "MOD-SP", AccessionNumber="",
                           RequestAttributesSequence=Sequence([request])))  # fmt: skip
    linked = wait(lambda: order(ris, "RC5")["studies"], "the link by SPS ID")
    assert linked[0]["study_uid"] == uid and linked[0]["matched_by"] == "sps_id"


def test_patient_modality_and_station_only_suggest(ris: NodeProcess, tmp_path: Path) -> None:
    now = time.localtime()
    message = orm("RC-6", "RC6", patient="BN-RC6^^^BVCR", modality="CT", station="CT6",
                  start=time.strftime("%Y%m%d%H%M%S", now))  # fmt: skip
    assert send(ris, message)["code"] == "AA"
    uid = store(ris, study(tmp_path / "suggest", "BN-RC6", AccessionNumber="",
                           StudyDate=time.strftime("%Y%m%d", now),
                           StudyTime=time.strftime("%H%M%S", now)), aet="CT6")  # fmt: skip
    entry = wait(lambda: unmatched(ris).get(uid), "the unmatched entry")
    assert entry["suggested_accession"] == "RC6" and "suggested order RC6" in entry["reason"]
    assert order(ris, "RC6")["studies"] == [] and order(ris, "RC6")["status"] == "SCHEDULED"


def test_idle_study_completes_the_steps_it_started(ris: NodeProcess, his: HisListener,
                                                   tmp_path: Path) -> None:  # fmt: skip
    assert send(ris, orm("RC-7", "RC7", patient="BN-RC7^^^BVCR"))["code"] == "AA"
    store(ris, study(tmp_path / "idle", "MOD-ID", AccessionNumber="RC7"))
    wait(lambda: order(ris, "RC7")["status"] == "COMPLETED", "completion after idle", 60)
    his.wait_for(lambda got: any(m.field("OBR", 18) == "RC7" and m.field("ORC", 5) == "CM"
                                 for m in got))  # fmt: skip


def test_cancelled_order_is_not_linked(ris: NodeProcess, tmp_path: Path) -> None:
    assert send(ris, orm("RC-8", "RC8", patient="BN-RC8^^^BVCR"))["code"] == "AA"
    assert send(ris, orm("RC-8C", "RC8", control="CA"))["code"] == "AA"
    uid = store(ris, study(tmp_path / "cancelled", "MOD-CA", AccessionNumber="RC8"))
    entry = wait(lambda: unmatched(ris).get(uid), "the unmatched entry")
    assert entry["reason_code"] == "ORDER_CANCELLED" and "RC8" in entry["reason"]
    status, body = api(ris, "POST", f"/api/unmatched/{uid}/link", {"accession": "RC8"})
    assert status == 409 and "CANCELLED" in body["error"]


def _adt(kind: str, control_id: str, pid: str, name: str, mrg: str = "") -> str:
    segments = [
        segment("MSH", {3: "HIS", 4: "BVCR", 7: "20261126", 9: f"ADT^{kind}", 10: control_id,
                        11: "P", 12: "2.5", 18: "UNICODE UTF-8"}),
        segment("EVN", {1: kind}),
        segment("PID", {1: "1", 3: pid, 5: name, 7: "19800115", 8: "F"}),
    ]  # fmt: skip
    if mrg:
        segments.append(segment("MRG", {1: mrg}))
    return "\r".join(segments) + "\r"


def test_adt_a08_renames_stored_images(ris: NodeProcess, tmp_path: Path) -> None:
    assert send(ris, orm("RC-9", "RC9", patient="BN-RC9^^^BVCR"))["code"] == "AA"
    uid = store(ris, study(tmp_path / "a08", "MOD-A8", AccessionNumber="RC9"))
    coerced(ris, uid, NAME, 2)
    renamed = "Trần^Thị Ngọc Ánh"
    assert send(ris, _adt("A08", "RC-9A", "BN-RC9^^^BVCR", renamed))["code"] == "AA"
    for ds in coerced(ris, uid, renamed, 2):
        first, second = ds.OriginalAttributesSequence
        assert second.ReasonForTheAttributeModification == "CORRECT"
        assert str(second.ModifiedAttributesSequence[0].PatientName) == NAME
        assert first.ReasonForTheAttributeModification == "COERCE"
    [found] = find(ris, "STUDY", "PatientID=BN-RC9", "StudyInstanceUID", "PatientName")
    assert str(found.StudyInstanceUID) == uid and str(found.PatientName) == renamed


def test_adt_a40_merges_orders_and_stored_studies(ris: NodeProcess, tmp_path: Path) -> None:
    assert send(ris, orm("RC-10", "RC10", patient="OLD-RC10^^^BVCR"))["code"] == "AA"
    assert send(ris, orm("RC-11", "RC11", patient="NEW-RC10^^^BVCR"))["code"] == "AA"
    old = store(ris, study(tmp_path / "old", "MOD-OLD", AccessionNumber="RC10"))
    new = store(ris, study(tmp_path / "new", "MOD-NEW", AccessionNumber="RC11"))
    unlinked = store(ris, study(tmp_path / "unlinked", "OLD-RC10", AccessionNumber=""))
    coerced(ris, old, NAME, 2)
    coerced(ris, new, NAME, 2)
    wait(lambda: unlinked in unmatched(ris), "the study without an order")

    merge = _adt("A40", "RC-10M", "NEW-RC10^^^BVCR", NAME, mrg="OLD-RC10^^^BVCR")
    assert send(ris, merge)["code"] == "AA"
    assert order(ris, "RC10")["patient"]["id"] == "NEW-RC10"

    def merged() -> bool:
        found = {str(s.StudyInstanceUID) for s in find(ris, "STUDY", "PatientID=NEW-RC10",
                                                        "StudyInstanceUID")}  # fmt: skip
        return found == {old, new, unlinked}

    wait(merged, "every study under the surviving ID")
    assert find(ris, "STUDY", "PatientID=OLD-RC10", "StudyInstanceUID") == []
    assert find(ris, "PATIENT", "PatientID=OLD-RC10", model="-P") == []
    for ds in metadata(ris, unlinked):
        assert ds.PatientID == "NEW-RC10" and ds.AccessionNumber == ""  # no order: patient only
        history = ds.OriginalAttributesSequence[-1]
        assert history.ReasonForTheAttributeModification == "CORRECT"
        assert history.ModifiedAttributesSequence[0].PatientID == "OLD-RC10"
    assert_archive_consistent(ris.data_dir)


def test_reconciliation_survives_a_kill_9(node_factory, tmp_path: Path) -> None:
    """Studies committed but not yet reconciled when the node dies are done after restart."""
    config = tmp_path / "n.toml"
    config.write_text("[recon]\nenabled = false\n[dicom]\nworkers = 1\n")
    node: NodeProcess = node_factory(extra_args=["--config", str(config)]).start()
    assert send(node, orm("KR-1", "KR1", patient="BN-KR1^^^BVCR"))["code"] == "AA"
    uid = store(node, study(tmp_path / "kr", "MOD-KR", count=4, AccessionNumber="KR1"))
    node.kill()
    config.write_text("[dicom]\nworkers = 1\n")
    restarted = node_factory(extra_args=node.extra_args).start()
    coerced(restarted, uid, NAME, 4)
    assert [s["study_uid"] for s in order(restarted, "KR1")["studies"]] == [uid]
    assert_archive_consistent(restarted.data_dir)


def test_outbox_and_unmatched_answer_json(ris: NodeProcess) -> None:
    status, body = api(ris, "GET", "/api/unmatched?limit=x")
    assert status == 400 and "limit" in body["error"]
    status, body = api(ris, "GET", "/api/hl7/outbox?limit=5")
    assert status == 200 and set(body["totals"]) == {"PENDING", "SENT", "DEAD"}
    spec = api(ris, "GET", "/api/openapi.json")[1]
    link = spec["paths"]["/api/unmatched/{study}/link"]["post"]
    assert link["x-permission"] == "orders.write" and "requestBody" in link
    resend = spec["paths"]["/api/hl7/outbox/{id}/resend"]["post"]
    assert resend["x-permission"] == "system.configure"
    text = json.dumps(spec)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.removeprefix("#/components/schemas/") in spec["components"]["schemas"], ref


def test_the_hub_receives_the_coerced_version(node_factory, tmp_path: Path) -> None:
    """An edge sends a study to the hub only once it is reconciled: the hub's copy carries the
    order's demographics, byte for byte the edge's."""
    from tests.authn import add_token
    from tests.test_uplink import edge_config, wait_for

    hub: NodeProcess = node_factory("hub", mode="hub", trusted_loopback=False).start()
    token = add_token(hub, "edge_uplink", "technician")
    args = edge_config(tmp_path / "edge.toml", f"{hub.url}/dicom-web", token)
    edge: NodeProcess = node_factory("edge", extra_args=args).start()
    assert send(edge, orm("UP-1", "UP1", patient="BN-UP1^^^BVCR"))["code"] == "AA"
    uid = store(edge, study(tmp_path / "up", "MOD-UP", count=3, AccessionNumber="UP1"))
    coerced(edge, uid, NAME, 3)
    wait_for(lambda: edge.health()["uplink"]["queue_depth"] == 0
             and len(index_digests(hub.data_dir)) == 3, what="the study at the hub")  # fmt: skip
    assert index_digests(hub.data_dir) == index_digests(edge.data_dir)
    found = index_digests(hub.data_dir)
    for digest in found.values():
        blob = hub.data_dir / "blobs" / digest[:2] / digest[2:4] / digest
        assert NAME.encode() in blob.read_bytes()
