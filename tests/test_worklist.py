"""Modality Worklist SCP against DCMTK findscu -W and a pynetdicom SCU, orders sent over MLLP
(RIS-5.1, RIS-5.2, FLOW-1): matching, return keys, character sets, bad queries, AE policy."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation
from pynetdicom.sop_class import ModalityWorklistInformationFind

from tests.conftest import config_args, echo_ok, mekong_cli
from tests.nodeproc import AE_TITLE, NodeProcess
from tests.worklist_support import NAME, SPS, get_order, send_hl7, step_keys, worklist
from tools.hl7send import orm, segment

TODAY = time.strftime("%Y%m%d")
# (accession, patient ID, name, modality, start): every one on station RNG1
RANGE_ORDERS = (
    ("RNG0001", "BN101", NAME, "CR", "202701050800"),
    ("RNG0002", "BN102", "Trần^Văn Đức", "CT", "202701051400"),
    ("RNG0003", "BN103", "Lê^Thị Lan", "CR", "202701060900"),
    ("RNG0004", "BN104", "NGUYEN^VAN AN", "CT", "202701071000"),
)


@pytest.fixture(scope="module")
def ris(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One node (default two DICOM processes) with the RNG1 orders."""
    folder = tmp_path_factory.mktemp("mwl")
    node = NodeProcess(folder / "data", extra_args=config_args(folder / "n.toml", workers=2))
    node.start()
    for accession, patient, name, modality, start in RANGE_ORDERS:
        message = orm(f"NW-{accession}", accession, patient=f"{patient}^^^BVCR", name=name,
                      modality=modality, station="RNG1", start=start)  # fmt: skip
        assert send_hl7(node, message)["code"] == "AA"
    yield node
    node.stop()


def accessions(answer) -> list[str]:  # type: ignore[no-untyped-def]
    assert answer.result.returncode == 0, answer.result.stderr
    return sorted(str(item.AccessionNumber) for item in answer.items)


def rng(*keys: str, **step: str) -> list[str]:
    return ["AccessionNumber", *keys, *step_keys(ScheduledStationAETitle="RNG1", **step)]


def test_hl7_order_is_in_the_worklist_until_cancelled(ris: NodeProcess) -> None:
    ack = send_hl7(ris, orm("MWL-NW-1", "MWL0001", station="CRVN1", start=f"{TODAY}093000"))
    assert ack["code"] == "AA", ack
    keys = ["PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID",
            "RequestedProcedureID", "RequestedProcedureDescription",
            *step_keys(ScheduledStationAETitle="CRVN1", Modality="CR",
                       ScheduledProcedureStepStartDate=TODAY, ScheduledProcedureStepID="",
                       ScheduledProcedureStepStatus="")]  # fmt: skip
    answer = worklist(ris, *keys)
    assert answer.statuses == [0xFF00, 0x0000], answer.result.stderr
    [item], [raw] = answer.items, answer.raw
    assert item.SpecificCharacterSet == "ISO_IR 192"
    assert NAME.encode() in raw and str(item.PatientName) == NAME
    step = item[SPS][0]
    assert (item.AccessionNumber, step.ScheduledProcedureStepID) == ("MWL0001", "MWL0001")
    assert (step.ScheduledStationAETitle, step.Modality) == ("CRVN1", "CR")
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStatus) == (
        TODAY, "SCHEDULED")  # fmt: skip
    stored = get_order(ris, "MWL0001")
    assert item.StudyInstanceUID == stored["procedure"]["study_uid"]
    assert item.RequestedProcedureDescription == "Chụp X quang ngực thẳng"
    assert (item.PatientID, item.RequestedProcedureID) == ("BN001", "MWL0001")

    assert send_hl7(ris, orm("MWL-CA-1", "MWL0001", control="CA"))["code"] == "AA"
    gone = worklist(ris, *keys)
    assert gone.items == [] and gone.statuses == [0x0000]


@pytest.mark.parametrize(
    ("date", "time_range", "expected"),
    [
        ("20270105", "", ["RNG0001", "RNG0002"]),
        ("20270105-20270106", "", ["RNG0001", "RNG0002", "RNG0003"]),
        ("-20270105", "", ["RNG0001", "RNG0002"]),
        ("20270106-", "", ["RNG0003", "RNG0004"]),
        ("", "1000-1500", ["RNG0002", "RNG0004"]),
        ("20270105", "-1200", ["RNG0001"]),
        ("20270101-20271231", "0900", ["RNG0003"]),
    ],
)
def test_date_and_time_ranges(ris: NodeProcess, date: str, time_range: str, expected) -> None:  # type: ignore[no-untyped-def]
    step = {"ScheduledProcedureStepStartDate": date, "ScheduledProcedureStepStartTime": time_range}
    assert accessions(worklist(ris, *rng(**step))) == expected


@pytest.mark.parametrize(
    ("keys", "step", "expected"),
    [
        (["PatientName=nguyễn*"], {}, ["RNG0001"]),  # case-insensitive, accents significant
        (["PatientName=*đức"], {}, ["RNG0002"]),
        (["PatientName=NGUY?N*"], {}, ["RNG0001", "RNG0004"]),  # '?' is one character: Ễ
        (["PatientName=*^Thị*"], {}, ["RNG0001", "RNG0003"]),
        (["PatientID=BN103"], {}, ["RNG0003"]),
        (["AccessionNumber=RNG000?"], {"Modality": "CT"}, ["RNG0002", "RNG0004"]),
        (["RequestedProcedureID=RNG0002"], {}, ["RNG0002"]),
        ([], {"ScheduledProcedureStepID": "RNG0004"}, ["RNG0004"]),
        ([], {"Modality": "CT\\CR"}, ["RNG0001", "RNG0002", "RNG0003", "RNG0004"]),
        (
            [],
            {"ScheduledProcedureStepStatus": "SCHEDULED"},
            ["RNG0001", "RNG0002", "RNG0003", "RNG0004"],
        ),
        ([], {"ScheduledProcedureStepStatus": "STARTED"}, []),
        ([], {"ScheduledStationAETitle": "RNG*", "Modality": "CR"}, ["RNG0001", "RNG0003"]),
    ],
)
def test_single_value_wildcard_and_list_matching(ris: NodeProcess, keys, step, expected) -> None:  # type: ignore[no-untyped-def]
    station = step.pop("ScheduledStationAETitle", "RNG1")
    query = [*keys, *step_keys(ScheduledStationAETitle=station, **step)]
    if not any(k.startswith("AccessionNumber") for k in keys):
        query.append("AccessionNumber")
    assert accessions(worklist(ris, *query)) == expected


def test_empty_sequence_key_returns_every_step_key(ris: NodeProcess) -> None:
    answer = worklist(ris, "AccessionNumber=RNG0003", SPS, "RequestedProcedureCodeSequence",
                      "ReferencedStudySequence", "StudyInstanceUID", "PregnancyStatus")  # fmt: skip
    [item] = answer.items
    step = item[SPS][0]
    assert (step.ScheduledStationAETitle, step.Modality, step.ScheduledProcedureStepID) == (
        "RNG1", "CR", "RNG0003")  # fmt: skip
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == (
        "20270106", "090000")  # fmt: skip
    assert step.ScheduledProcedureStepStatus == "SCHEDULED"
    assert step.ScheduledProtocolCodeSequence[0].CodeValue == "XQ001"
    code = item.RequestedProcedureCodeSequence[0]
    assert (code.CodeValue, code.CodeMeaning) == ("XQ001", "Chụp X quang ngực thẳng")
    assert item.ReferencedStudySequence[0].ReferencedSOPInstanceUID == item.StudyInstanceUID
    assert "PregnancyStatus" in item and item.PregnancyStatus is None  # unknown: zero length


def test_one_response_per_scheduled_step(ris: NodeProcess) -> None:
    omi = "\r".join([
        segment("MSH", {3: "HIS", 4: "BVCR", 7: "20261126", 9: "OMI^O23^OMI_O23", 10: "MWL-OMI",
                        11: "P", 12: "2.5.1", 18: "UNICODE UTF-8"}),
        segment("PID", {1: "1", 3: "BN9001^^^BVCR", 5: NAME}),
        segment("ORC", {1: "NW", 2: "P9001", 5: "SC"}),
        segment("TQ1", {1: "1", 7: "202702011015", 9: "S"}),
        segment("OBR", {1: "1", 2: "P9001", 4: "CT01^CT sọ não"}),
        segment("IPC", {1: "MWL9001", 2: "RP9001", 3: "1.2.3.9001", 4: "SPS9001A", 5: "CT",
                        9: "CTTWO"}),
        segment("IPC", {1: "MWL9001", 2: "RP9001", 3: "1.2.3.9001", 4: "SPS9001B", 5: "CT",
                        9: "CTTWO"}),
    ])  # fmt: skip
    assert send_hl7(ris, omi)["code"] == "AA"
    step = step_keys(ScheduledStationAETitle="CTTWO", ScheduledProcedureStepID="")
    answer = worklist(ris, "AccessionNumber", "StudyInstanceUID", *step)
    assert [i[SPS][0].ScheduledProcedureStepID for i in answer.items] == ["SPS9001A", "SPS9001B"]
    assert {(i.AccessionNumber, i.StudyInstanceUID) for i in answer.items} == {
        ("MWL9001", "1.2.3.9001")}  # fmt: skip


def test_ascii_worklist_ae_gets_folded_names(ris: NodeProcess) -> None:
    added = mekong_cli("ae", "add", "OLDCR", "--host", "127.0.0.1", "--port", "104",
                       "--ascii-worklist", "--data", str(ris.data_dir))  # fmt: skip
    assert added.returncode == 0, added.stderr
    listing = mekong_cli("ae", "list", "--data", str(ris.data_dir))
    assert "OLDCR" in listing.stdout and "ascii-worklist" in listing.stdout
    time.sleep(2.5)  # the AE table is reloaded every second, by each DICOM process
    keys = ("PatientName", "RequestedProcedureDescription", "AccessionNumber=RNG0001",
            *step_keys(ScheduledProcedureStepDescription=""))  # fmt: skip
    answer = worklist(ris, *keys, aet="OLDCR")
    [item], [raw] = answer.items, answer.raw
    assert "SpecificCharacterSet" not in item
    assert str(item.PatientName) == "Nguyen^Thi Hong Nhung"
    assert item.RequestedProcedureDescription == "Chup X quang nguc thang"
    assert NAME.encode() not in raw and b"Nguyen^Thi Hong Nhung" in raw
    assert str(worklist(ris, *keys).items[0].PatientName) == NAME  # others keep UTF-8


@pytest.mark.parametrize(
    "bad",
    [
        step_keys(ScheduledProcedureStepStartDate="2027-01-05"),
        step_keys(ScheduledProcedureStepStartDate="20271305"),
        step_keys(ScheduledProcedureStepStartDate="20270106-20270105"),
        step_keys(ScheduledProcedureStepStartDate="-"),
        step_keys(ScheduledProcedureStepStartTime="2500"),
        step_keys(ScheduledProcedureStepStartTime="1700-0800"),
        ["PatientBirthDate=1980"],
        [f"{SPS}[0].Modality=CT", f"{SPS}[1].Modality=MR"],
    ],
)
def test_invalid_query_fails_and_the_node_stays_up(ris: NodeProcess, bad: list[str]) -> None:
    answer = worklist(ris, "AccessionNumber", *bad)
    assert answer.items == []
    assert answer.statuses == [0xA900], answer.result.stderr
    assert "ErrorComment" in answer.result.stderr
    assert echo_ok(ris)


def test_ae_without_find_is_refused(ris: NodeProcess) -> None:
    added = mekong_cli("ae", "add", "NOFIND", "--host", "127.0.0.1", "--port", "104",
                       "--allow", "echo,store", "--data", str(ris.data_dir))  # fmt: skip
    assert added.returncode == 0, added.stderr
    time.sleep(2.5)
    answer = worklist(ris, "AccessionNumber", *step_keys(ScheduledStationAETitle="RNG1"),
                      aet="NOFIND")  # fmt: skip
    assert answer.items == [] and answer.statuses == [0x0124]


def mwl_find(node: NodeProcess, identifier: Dataset, info: bytes | None) -> tuple[list, int]:
    """pynetdicom SCU, optionally with SOP Class Extended Negotiation ``info``."""
    ae = AE(ae_title="PYMWL")
    ae.add_requested_context(ModalityWorklistInformationFind)
    negotiation = []
    if info is not None:
        item = SOPClassExtendedNegotiation()
        item.sop_class_uid = ModalityWorklistInformationFind
        item.service_class_application_information = info
        negotiation.append(item)
    assoc = ae.associate("127.0.0.1", node.dicom_port, ae_title=AE_TITLE, ext_neg=negotiation)
    assert assoc.is_established
    try:
        answers = list(assoc.send_c_find(identifier, ModalityWorklistInformationFind))
    finally:
        assoc.release()
    items = [ds for status, ds in answers if status.Status in (0xFF00, 0xFF01)]
    return items, int(answers[-1][0].Status)


def test_combined_date_time_range_when_negotiated(ris: NodeProcess) -> None:
    identifier = Dataset()
    identifier.AccessionNumber = ""
    step = Dataset()
    step.ScheduledStationAETitle = "RNG1"
    step.ScheduledProcedureStepStartDate = "20270105-20270106"
    step.ScheduledProcedureStepStartTime = "1200-0930"  # from 5 Jan 12:00 to 6 Jan 09:30
    identifier.ScheduledProcedureStepSequence = [step]
    items, final = mwl_find(ris, identifier, b"\x01\x01\x00")
    assert final == 0x0000 and sorted(i.AccessionNumber for i in items) == ["RNG0002", "RNG0003"]
    items, final = mwl_find(ris, identifier, None)  # separately, that time range is reversed
    assert items == [] and final == 0xA900


def test_fuzzy_names_when_negotiated(ris: NodeProcess) -> None:
    identifier = Dataset()
    identifier.AccessionNumber = ""
    identifier.PatientName = "nguyen"
    step = Dataset()
    step.ScheduledStationAETitle = "RNG1"
    identifier.ScheduledProcedureStepSequence = [step]
    items, _ = mwl_find(ris, identifier, b"\x01\x01\x01")
    assert sorted(i.AccessionNumber for i in items) == ["RNG0001", "RNG0004"]
    items, _ = mwl_find(ris, identifier, None)  # literal: 'NGUYEN' is no whole name here
    assert items == []


def test_ascii_worklist_over_the_admin_api(ris: NodeProcess) -> None:
    def put(body: dict) -> dict:  # type: ignore[type-arg]
        request = urllib.request.Request(
            f"{ris.url}/api/admin/aes/APIWL", data=json.dumps(body).encode(), method="PUT",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.load(reply)

    base = {"host": "127.0.0.1", "port": 104, "allow": ["echo", "find"]}
    assert put({**base, "ascii_worklist": True})["ascii_worklist"] is True
    assert put({**base, "fuzzy_find": True})["ascii_worklist"] is True  # not sent: kept
    assert put({**base, "ascii_worklist": False})["ascii_worklist"] is False
    listing = mekong_cli("ae", "list", "--data", str(ris.data_dir)).stdout
    assert any(line.startswith("APIWL") and "ascii" not in line for line in listing.splitlines())
