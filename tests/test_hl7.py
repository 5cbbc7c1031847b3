"""HL7 v2 over MLLP against a real node: orders, patients, ACK/NAK rules, resends, charsets,
the message log and durability (RIS-6.1, RIS-9.4–9.6, PACS-16.5)."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import config_args
from tests.nodeproc import NodeProcess
from tools.hl7send import MllpClient, ack_fields, orm, segment

NAME = "Nguyễn^Thị Hồng Nhung"


@pytest.fixture(scope="module")
def ris(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One node for the module (one DICOM process: these tests do not store images)."""
    folder = tmp_path_factory.mktemp("ris")
    node = NodeProcess(folder / "data", extra_args=config_args(folder / "n.toml", workers=1))
    yield node.start()
    node.stop()


def send(node: NodeProcess, message: str | bytes) -> dict[str, str]:
    data = message if isinstance(message, bytes) else message.encode()
    with MllpClient("127.0.0.1", node.hl7_port) as client:
        return ack_fields(client.send(data), "latin-1" if b"8859/1" in data else "utf-8")


def api(node: NodeProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{node.url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def order(node: NodeProcess, accession: str) -> dict[str, Any] | None:
    status, body = api(node, "GET", f"/api/orders/{accession}")
    return body if status == 200 else None


def logged(node: NodeProcess, control_id: str) -> list[dict[str, Any]]:
    return api(node, "GET", f"/api/hl7/messages?control_id={control_id}")[1]["messages"]


def test_new_order_with_vietnamese_name_is_stored_byte_exact(ris: NodeProcess) -> None:
    ack = send(ris, orm("NW-1", "ACC1001", start="20261126093000"))
    assert (ack["code"], ack["control_id"]) == ("AA", "NW-1")
    found = order(ris, "ACC1001")
    assert found is not None
    assert found["patient"]["name"].encode() == NAME.encode()
    assert (found["patient"]["id"], found["patient"]["issuer"]) == ("BN001", "BVCR")
    assert (found["placer_number"], found["status"], found["source"]) == (
        "PACC1001", "SCHEDULED", "HIS^BVCR")  # fmt: skip
    assert found["procedure"]["description"] == "Chụp X quang ngực thẳng"
    step = found["steps"][0]
    assert (step["sps_id"], step["modality"], step["station_ae"]) == ("ACC1001", "CR", "CR1")
    assert (step["start_date"], step["start_time"]) == ("20261126", "093000")
    assert found["visit"]["patient_class"] == "O"
    [entry] = logged(ris, "NW-1")
    assert entry["outcome"] == "AA" and "order ACC1001 created" in " ".join(entry["changes"])


def test_change_cancel_and_discontinue(ris: NodeProcess) -> None:
    assert send(ris, orm("XO-0", "ACC2001"))["code"] == "AA"
    ack = send(ris, orm("XO-1", "ACC2001", control="XO", station="CR9", start="20261127140000"))
    assert ack["code"] == "AA", ack
    step = order(ris, "ACC2001")["steps"][0]
    assert (step["station_ae"], step["start_date"], step["start_time"]) == (
        "CR9", "20261127", "140000")  # fmt: skip

    assert send(ris, orm("CA-1", "ACC2001", control="CA"))["code"] == "AA"
    assert order(ris, "ACC2001")["status"] == "CANCELLED"
    assert order(ris, "ACC2001")["steps"][0]["status"] == "CANCELLED"
    again = send(ris, orm("CA-2", "ACC2001", control="CA"))
    assert (again["code"], again["error_code"]) == ("AE", "206"), again
    assert "final" in again["error"]
    changed = send(ris, orm("XO-2", "ACC2001", control="XO", station="CR8"))
    assert changed["code"] == "AE" and order(ris, "ACC2001")["steps"][0]["station_ae"] == "CR9"

    assert send(ris, orm("DC-0", "ACC2002"))["code"] == "AA"
    assert send(ris, orm("DC-1", "ACC2002", control="DC"))["code"] == "AA"
    assert order(ris, "ACC2002")["status"] == "DISCONTINUED"


def test_status_change_sc(ris: NodeProcess) -> None:
    assert send(ris, orm("SC-0", "ACC2101"))["code"] == "AA"
    ack = send(ris, _orc5(orm("SC-1", "ACC2101", control="SC"), "IP"))
    assert ack["code"] == "AA", ack
    assert order(ris, "ACC2101")["status"] == "IN_PROGRESS"
    assert send(ris, _orc5(orm("SC-2", "ACC2101", control="SC"), "CM"))["code"] == "AA"
    assert order(ris, "ACC2101")["status"] == "COMPLETED"
    back = send(ris, _orc5(orm("SC-3", "ACC2101", control="SC"), "IP"))
    assert (back["code"], back["error_code"]) == ("AE", "206")


def _orc5(message: str, status: str) -> str:
    segments = message.split("\r")
    for n, seg in enumerate(segments):
        if seg.startswith("ORC|"):
            fields = seg.split("|")
            fields += [""] * (8 - len(fields))
            fields[5] = status
            segments[n] = "|".join(fields)
    return "\r".join(segments)


def test_resent_message_is_acknowledged_and_applied_once(ris: NodeProcess) -> None:
    message = orm("RESEND-1", "ACC3001").encode()
    with MllpClient("127.0.0.1", ris.hl7_port) as client:
        first, second = client.send(message), client.send(message)
    assert first == second and ack_fields(first)["code"] == "AA"
    entries = logged(ris, "RESEND-1")
    assert [e["outcome"] for e in entries] == ["AA", "AA"]
    assert entries[0]["duplicate_of"] == entries[1]["id"]
    assert api(ris, "GET", "/api/orders?limit=1000")[1]["orders"].count(order(ris, "ACC3001")) == 1


BAD = [
    ("malformed", b"this is not HL7\r", "AR", "100"),
    ("unknown type", orm("BAD-TYPE", "ACC4001", msh={9: "ZZZ^Z01"}).encode(), "AR", "200"),
    ("unknown event", orm("BAD-EVENT", "ACC4002", msh={9: "ORM^O99"}).encode(), "AR", "201"),
    ("missing PID-3", orm("BAD-PID", "ACC4003", patient="").encode(), "AE", "101"),
    ("wrong version", orm("BAD-VER", "ACC4004", msh={12: "2.1"}).encode(), "AR", "203"),
    ("unknown order", orm("BAD-CA", "ACC4005", control="CA").encode(), "AE", "204"),
    ("bad control", orm("BAD-ORC", "ACC4006", control="ZZ").encode(), "AE", "103"),
    ("bad date", orm("BAD-DATE", "ACC4007", start="20261399").encode(), "AE", "102"),
    ("charset", orm("BAD-CS", "ACC4008", msh={18: "KOI8"}).encode(), "AR", "103"),
    ("not UTF-8", orm("BAD-UTF", "ACC4009").encode().replace("ễ".encode(), b"\xe1\xbb"),
     "AE", "102"),
    ("no MSH-10", orm("", "ACC4010").encode(), "AR", "101"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "code", "error"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])  # fmt: skip
def test_bad_messages_are_refused_with_err_and_nothing_applied(
    ris: NodeProcess, message: bytes, code: str, error: str
) -> None:
    ack = send(ris, message)
    assert (ack["code"], ack["error_code"]) == (code, error), ack
    assert ack["error"], "ERR-8 tells a person what to fix"
    for n in range(4001, 4011):
        assert order(ris, f"ACC{n}") is None
    if ack["control_id"]:
        [entry] = logged(ris, ack["control_id"])
        assert (entry["outcome"], entry["error_code"]) == (code, error)


def test_adt_a08_updates_the_name(ris: NodeProcess) -> None:
    assert send(ris, orm("A08-0", "ACC5001", patient="BN5001^^^BVCR"))["code"] == "AA"
    adt = "\r".join([
        segment("MSH", {3: "HIS", 4: "BVCR", 7: "20261126", 9: "ADT^A08", 10: "A08-1",
                        11: "P", 12: "2.5", 18: "UNICODE UTF-8"}),
        segment("EVN", {1: "A08"}),
        segment("PID", {1: "1", 3: "BN5001^^^BVCR", 5: "Trần Thị Ngọc Ánh", 8: "F"}),
    ])  # fmt: skip
    assert send(ris, adt)["code"] == "AA"
    assert order(ris, "ACC5001")["patient"]["name"] == "Trần^Thị Ngọc Ánh"
    assert order(ris, "ACC5001")["patient"]["birth_date"] == "19800115"  # not sent: kept


def test_adt_a40_merges_two_patients_orders(ris: NodeProcess) -> None:
    assert send(ris, orm("A40-0", "ACC6001", patient="OLD6^^^BVCR"))["code"] == "AA"
    assert send(ris, orm("A40-1", "ACC6002", patient="NEW6^^^BVCR"))["code"] == "AA"
    adt = "\r".join([
        segment("MSH", {3: "HIS", 4: "BVCR", 7: "20261126", 9: "ADT^A40", 10: "A40-2",
                        11: "P", 12: "2.5"}),
        segment("EVN", {1: "A40"}),
        segment("PID", {1: "1", 3: "NEW6^^^BVCR", 5: NAME}),
        segment("MRG", {1: "OLD6^^^BVCR"}),
    ])  # fmt: skip
    assert send(ris, adt)["code"] == "AA"
    assert order(ris, "ACC6001")["patient"]["id"] == "NEW6"
    assert order(ris, "ACC6002")["patient"]["id"] == "NEW6"
    assert api(ris, "GET", "/api/patients/OLD6?issuer=BVCR")[1]["id"] == "NEW6"
    unknown = send(ris, adt.replace("A40-2", "A40-3").replace("OLD6", "NOBODY"))
    assert (unknown["code"], unknown["error_code"]) == ("AE", "204")


def test_latin1_charset_is_decoded(ris: NodeProcess) -> None:
    message = orm(
        "L1-1", "ACC7001", patient="L1^^^BVCR", name="Müller^José", msh={18: "8859/1"}
    ).replace("Chụp X quang ngực thẳng", "Radiografía tórax")
    ack = send(ris, message.encode("latin-1"))
    assert ack["code"] == "AA", ack
    found = order(ris, "ACC7001")
    assert found["patient"]["name"] == "Müller^José"
    assert found["procedure"]["description"] == "Radiografía tórax"


def test_omi_o23_with_tq1_and_two_ipc_steps(ris: NodeProcess) -> None:
    omi = "\r".join([
        segment("MSH", {3: "HIS", 4: "BVCR", 7: "20261126", 9: "OMI^O23^OMI_O23", 10: "OMI-1",
                        11: "P", 12: "2.5.1", 18: "UNICODE UTF-8"}),
        segment("PID", {1: "1", 3: "BN8001^^^BVCR", 5: NAME}),
        segment("ORC", {1: "NW", 2: "P8001", 5: "SC"}),
        segment("TQ1", {1: "1", 7: "202611261015", 9: "S"}),
        segment("OBR", {1: "1", 2: "P8001", 4: "CT01^CT sọ não"}),
        segment("IPC", {1: "ACC8001", 2: "RP8001", 3: "1.2.3.8001", 4: "SPS8001A", 5: "CT",
                        8: "P101", 9: "CT1"}),
        segment("IPC", {1: "ACC8001", 2: "RP8001", 3: "1.2.3.8001", 4: "SPS8001B", 5: "CT",
                        8: "P101", 9: "CT1"}),
    ])  # fmt: skip
    assert send(ris, omi)["code"] == "AA"
    found = order(ris, "ACC8001")
    assert found["priority"] == "STAT" and found["procedure"]["id"] == "RP8001"
    assert found["procedure"]["study_uid"] == "1.2.3.8001"
    assert [s["sps_id"] for s in found["steps"]] == ["SPS8001A", "SPS8001B"]
    assert {(s["room"], s["start_time"]) for s in found["steps"]} == {("P101", "101500")}


def test_master_files_then_an_order_without_modality(ris: NodeProcess) -> None:
    msh = {3: "HIS", 4: "BVCR", 7: "20261126", 11: "P", 12: "2.5", 18: "UNICODE UTF-8"}
    locations = "\r".join([
        segment("MSH", {**msh, 9: "MFN^M05", 10: "MFN-1"}),
        segment("MFI", {1: "LOC", 3: "UPD"}),
        segment("MFE", {1: "MAD", 4: "CDHA"}),
        segment("LOC", {1: "CDHA", 2: "Khoa Chẩn đoán hình ảnh", 3: "D"}),
        segment("MFE", {1: "MAD", 4: "P205"}),
        segment("LOC", {1: "CDHA^P205", 2: "Phòng siêu âm 205", 3: "R"}),
    ])  # fmt: skip
    services = "\r".join([
        segment("MSH", {**msh, 9: "MFN^M08", 10: "MFN-2"}),
        segment("MFI", {1: "OMA", 3: "UPD"}),
        segment("MFE", {1: "MAD", 4: "SA01"}),
        segment("OM1", {1: "1", 2: "SA01^Siêu âm ổ bụng tổng quát", 16: "US", 24: "6"}),
    ])  # fmt: skip
    assert send(ris, locations)["code"] == "AA"
    assert send(ris, services)["code"] == "AA"
    message = orm("MFN-3", "ACC9001", modality="", station="")
    message = message.replace("XQ001^Chụp X quang ngực thẳng", "SA01")
    assert send(ris, message)["code"] == "AA"
    found = order(ris, "ACC9001")
    assert found["steps"][0]["modality"] == "US"
    assert found["procedure"]["description"] == "Siêu âm ổ bụng tổng quát"
    with closing(sqlite3.connect(f"file:{ris.data_dir / 'index.db'}?mode=ro", uri=True)) as db:
        assert db.execute("SELECT department FROM ris_room WHERE code='P205'").fetchone() == (
            "CDHA",)  # fmt: skip
        assert db.execute("SELECT bhyt_min_minutes FROM ris_service").fetchone() == (6,)


def test_message_log_search(ris: NodeProcess) -> None:
    assert send(ris, orm("LOG-1", "ACC9101"))["code"] == "AA"
    assert send(ris, orm("LOG-2", "ACC9102", msh={12: "9.9"}))["code"] == "AR"

    def search(query: str) -> list[str]:
        status, body = api(ris, "GET", f"/api/hl7/messages?{query}")
        assert status == 200, body
        return [m["control_id"] for m in body["messages"]]

    assert search("control_id=LOG-2") == ["LOG-2"]
    assert "LOG-2" in search("outcome=AR") and "LOG-1" not in search("outcome=AR")
    assert "LOG-1" in search("type=ORM&text=ACC9101")
    assert "LOG-1" in search("type=ORM^O01&since=2000-01-01")
    assert search("text=ACC9101&until=2000-01-01") == []
    assert api(ris, "GET", "/api/hl7/messages?since=yesterday")[0] == 400
    assert api(ris, "GET", "/api/hl7/messages?outcome=XX")[0] == 400
    entry_id = api(ris, "GET", "/api/hl7/messages?control_id=LOG-2")[1]["messages"][0]["id"]
    status, entry = api(ris, "GET", f"/api/hl7/messages/{entry_id}")
    assert status == 200 and "MSA|AR|LOG-2" in entry["ack"] and "ACC9102" in entry["raw"]


def test_acknowledged_order_survives_kill_9(node_factory, tmp_path: Path) -> None:
    node: NodeProcess = node_factory(extra_args=config_args(tmp_path / "n.toml", workers=1))
    node.start()
    with MllpClient("127.0.0.1", node.hl7_port) as client:
        acks = [ack_fields(client.send(orm(f"K-{n}", f"ACCK{n}").encode())) for n in range(20)]
    node.kill()
    assert {a["code"] for a in acks} == {"AA"}
    restarted = node_factory(extra_args=node.extra_args).start()
    for n in range(20):
        assert order(restarted, f"ACCK{n}")["patient"]["name"] == NAME


def test_examples_in_the_interface_spec_are_accepted(node_factory, tmp_path: Path) -> None:
    spec = (Path(__file__).parents[1] / "docs" / "hl7.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in spec.split("```\n")[1::2]]
    examples = [b for b in blocks if b.startswith("MSH|") and "|ACK" not in b.split("\n")[0]]
    assert len(examples) == 4
    node = node_factory(extra_args=config_args(tmp_path / "n.toml", workers=1)).start()
    for example in examples:
        ack = send(node, example.replace("\n", "\r"))
        assert ack["code"] == "AA", (example, ack)
    assert order(node, "ACC0001")["patient"]["id"] == "BN003"  # merged by the A40 example
    assert [s["sps_id"] for s in order(node, "ACC0002")["steps"]] == ["SPS0002A", "SPS0002B"]
