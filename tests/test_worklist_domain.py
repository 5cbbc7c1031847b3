"""Worklist matching and MPPS without a network: identifier parsing, SQL + Python name matching,
responses, performed-step linking (group and append cases) and the order-status event hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from sqlalchemy import Connection

from mekong.shared.config import ConfigError, load_config
from mekong.shared.db.index import Index
from mekong.shared.dimse.identifiers import IdentifierError
from mekong.shared.dimse.worklist_keys import parse_identifier
from mekong.shared.dimse.worklist_response import worklist_response
from mekong.shared.ris import events, mpps, orders, worklist
from mekong.shared.ris.model import OrderData, OrderRequest, PatientData, ProcedureData, StepData
from mekong.shared.ris.mpps import PerformedStep, StepReference
from mekong.shared.ris.status import Status

NAMES = ["Nguyễn^Thị Hồng Nhung", "Trần^Văn Đức", "NGUYEN^VAN AN", "Lê^Thị Lan", "Đặng^Đình"]
OFFERED = (Status.SCHEDULED, Status.ARRIVED)


@pytest.fixture
async def index(tmp_path: Path):
    index = await Index.open(tmp_path / "index.db")
    for number, name in enumerate(NAMES, start=1):
        request = OrderRequest(
            patient=PatientData(f"BN{number}", "BVCR", name, "19800115", "F"),
            order=OrderData(accession=f"A{number}"),
            procedure=ProcedureData(service_code="XQ001", description="Chụp X quang ngực"),
            steps=[StepData(modality="CR" if number % 2 else "CT", station_ae="CR1",
                            start_date=f"2027010{number}", start_time=f"{8 + number:02d}0000")],
        )  # fmt: skip
        index.transaction_blocking(lambda conn, r=request: orders.create_order(conn, r, []))
    yield index
    await index.close()


def identifier(step: dict[str, str] | None = None, **top: str) -> Dataset:
    ds = Dataset()
    ds.AccessionNumber = ""
    for key, value in top.items():
        setattr(ds, key, value)
    item = Dataset()
    for key, value in (step or {}).items():
        setattr(item, key, value)
    ds.ScheduledProcedureStepSequence = [item]
    return ds


def found(index: Index, ds: Dataset, fuzzy: bool = False, combined: bool = False) -> list[str]:
    query = parse_identifier(ds, OFFERED, fuzzy, combined).query
    items = index.reading_blocking(lambda conn: worklist.find_items(conn, query))
    return [item["accession"] for item in items]


@pytest.mark.parametrize(
    "pattern",
    ["nguyễn*", "NGUY?N*", "*^Thị*", "*đức", "Trần^Văn Đức", "trần^văn đức", "*", "?ặng*",
     "Lê^*", "*Lan", "*^^*", "[x]*", "Nguyễn^", "*ĐÌNH", "nguyen*"],
)  # fmt: skip
async def test_name_matching_in_sql_equals_the_standard_rule(index: Index, pattern: str) -> None:
    """The folded-column pre-filter never loses a name the PN rule matches."""
    expected = [f"A{n}" for n, name in enumerate(NAMES, 1) if worklist.name_matches(name, pattern)]
    assert found(index, identifier(PatientName=pattern)) == expected


async def test_fuzzy_names(index: Index) -> None:
    assert found(index, identifier(PatientName="nguyen"), fuzzy=True) == ["A1", "A3"]
    assert found(index, identifier(PatientName="dang dinh"), fuzzy=True) == ["A5"]
    assert found(index, identifier(PatientName="nguyen")) == []


async def test_ranges_and_combined_date_time(index: Index) -> None:
    dates = {"ScheduledProcedureStepStartDate": "20270102-20270104"}
    assert found(index, identifier(dates)) == ["A2", "A3", "A4"]
    window = {**dates, "ScheduledProcedureStepStartTime": "1100-1200"}
    assert found(index, identifier(window)) == ["A3", "A4"]
    overnight = {**dates, "ScheduledProcedureStepStartTime": "1100-1000"}
    assert found(index, identifier(overnight), combined=True) == ["A3"]  # 2nd 11:00 → 4th 10:00
    with pytest.raises(IdentifierError, match="ends before it starts"):
        found(index, identifier(overnight))


@pytest.mark.parametrize(
    ("step", "top", "message"),
    [
        ({"ScheduledProcedureStepStartDate": "2027-01-05"}, {}, "not a date range"),
        ({"ScheduledProcedureStepStartDate": "20270230"}, {}, "not a date"),
        ({"ScheduledProcedureStepStartTime": "2460"}, {}, "not a time"),
        ({"ScheduledProcedureStepStartTime": "-"}, {}, "no bounds"),
        ({}, {"StudyInstanceUID": "1.2.*"}, "no wildcards"),
        ({}, {"PatientBirthDate": "19800115\\19800116"}, "one value"),
    ],
)
@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # pydicom, building the bad query
def test_invalid_keys(step: dict[str, str], top: dict[str, str], message: str) -> None:
    with pytest.raises(IdentifierError, match=message):
        parse_identifier(identifier(step, **top), OFFERED, False, False)


def test_two_items_and_wrong_vr_are_invalid() -> None:
    ds = identifier()
    ds.ScheduledProcedureStepSequence.append(Dataset())
    with pytest.raises(IdentifierError, match="2 items"):
        parse_identifier(ds, OFFERED, False, False)
    ds = Dataset()
    ds.add_new(0x00400100, "LO", "CT")  # ScheduledProcedureStepSequence sent as text
    with pytest.raises(IdentifierError, match="must be a sequence"):
        parse_identifier(ds, OFFERED, False, False)


def test_unsupported_keys_are_reported_not_matched() -> None:
    parsed = parse_identifier(identifier(PatientAddress="Hà Nội"), OFFERED, False, False)
    assert parsed.unsupported == ["PatientAddress"] and parsed.query.values == {}
    code = Dataset()
    code.CodeValue = ""
    ds = identifier()
    ds.RequestedProcedureCodeSequence = [code]
    assert parse_identifier(ds, OFFERED, False, False).unsupported == []  # return key only
    code.CodeValue = "XQ001"
    assert parse_identifier(ds, OFFERED, False, False).unsupported == [
        "RequestedProcedureCodeSequence"
    ]


async def test_statuses_offered(index: Index) -> None:
    index.transaction_blocking(lambda c: orders.set_step_status(c, "A1", Status.ARRIVED, []))
    index.transaction_blocking(lambda c: orders.set_step_status(c, "A2", Status.IN_PROGRESS, []))
    assert found(index, identifier()) == ["A1", "A3", "A4", "A5"]
    arrived = identifier({"ScheduledProcedureStepStatus": "ARRIVED"})
    assert found(index, arrived) == ["A1"]
    query = parse_identifier(identifier(), (*OFFERED, Status.IN_PROGRESS), False, False).query
    items = index.reading_blocking(lambda conn: worklist.find_items(conn, query))
    assert [i["accession"] for i in items] == ["A1", "A2", "A3", "A4", "A5"]
    with pytest.raises(ValueError, match="final"):
        worklist.find_items(None, worklist.WorklistQuery(statuses=(Status.COMPLETED,)))  # type: ignore[arg-type]


def test_worklist_statuses_config(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[dicom]\nworklist_statuses = ["SCHEDULED", "ARRIVED", "IN_PROGRESS"]\n')
    assert load_config(config).dicom.worklist_statuses[-1] == "IN_PROGRESS"
    config.write_text('[dicom]\nworklist_statuses = ["COMPLETED"]\n')
    with pytest.raises(ConfigError, match="dicom.worklist_statuses"):
        load_config(config)


async def test_ascii_response_keeps_case_and_drops_the_charset(index: Index) -> None:
    ds = identifier({"ScheduledProcedureStepDescription": ""}, PatientName="", AccessionNumber="A2")
    query = parse_identifier(ds, OFFERED, False, False).query
    [item] = index.reading_blocking(lambda conn: worklist.find_items(conn, query))
    folded = worklist_response(ds, item, ascii_only=True)
    assert "SpecificCharacterSet" not in folded and str(folded.PatientName) == "Tran^Van Duc"
    step = folded.ScheduledProcedureStepSequence[0]
    assert step.ScheduledProcedureStepDescription == "Chup X quang nguc"
    utf8 = worklist_response(ds, item, ascii_only=False)
    assert utf8.SpecificCharacterSet == "ISO_IR 192" and str(utf8.PatientName) == NAMES[1]


# --- MPPS --------------------------------------------------------------------------------------


def performed(uid: str, *refs: StepReference, status: Status = Status.IN_PROGRESS) -> PerformedStep:
    return PerformedStep(uid, status, modality="CR", references=refs, attributes="{}")


def status_of(index: Index, accession: str) -> str:
    return index.reading_blocking(lambda conn: orders.get_order(conn, accession))["status"]


async def test_group_case_and_events(index: Index) -> None:
    seen: list[events.OrderStatusChanged] = []
    unsubscribe = events.on_status_changed(lambda conn, event: seen.append(event))
    try:
        group = performed("1.9.1", StepReference(sps_id="A1"), StepReference(accession="A3"))
        index.transaction_blocking(lambda conn: mpps.create_pps(conn, group, []))
        assert (status_of(index, "A1"), status_of(index, "A3")) == ("IN_PROGRESS",) * 2
        done = performed("1.9.1", status=Status.COMPLETED)
        index.transaction_blocking(lambda conn: mpps.update_pps(conn, done, []))
    finally:
        unsubscribe()
    assert (status_of(index, "A1"), status_of(index, "A3")) == ("COMPLETED",) * 2
    assert [(e.accession, e.previous, e.status, e.cause) for e in seen] == [
        ("A1", "SCHEDULED", "IN_PROGRESS", "mpps"), ("A3", "SCHEDULED", "IN_PROGRESS", "mpps"),
        ("A1", "IN_PROGRESS", "COMPLETED", "mpps"), ("A3", "IN_PROGRESS", "COMPLETED", "mpps"),
    ]  # fmt: skip
    assert seen[0].detail["pps_uid"] == "1.9.1"


async def test_append_case_completes_when_the_last_step_ends(index: Index) -> None:
    for uid in ("1.9.2", "1.9.3"):
        step = performed(uid, StepReference(sps_id="A2"))
        index.transaction_blocking(lambda conn, s=step: mpps.create_pps(conn, s, []))
    first = performed("1.9.2", status=Status.DISCONTINUED)
    index.transaction_blocking(lambda conn: mpps.update_pps(conn, first, []))
    assert status_of(index, "A2") == "IN_PROGRESS"  # 1.9.3 still running
    second = performed("1.9.3", status=Status.COMPLETED)
    index.transaction_blocking(lambda conn: mpps.update_pps(conn, second, []))
    assert status_of(index, "A2") == "COMPLETED"


async def test_a_failing_listener_rolls_the_change_back(index: Index) -> None:
    def broken(conn: Connection, event: events.OrderStatusChanged) -> None:
        raise RuntimeError("outbox full")

    unsubscribe = events.on_status_changed(broken)
    try:
        with pytest.raises(RuntimeError):
            step = performed("1.9.4", StepReference(sps_id="A4"))
            index.transaction_blocking(lambda conn: mpps.create_pps(conn, step, []))
    finally:
        unsubscribe()
    assert status_of(index, "A4") == "SCHEDULED"
    listed: list[dict[str, Any]] = index.reading_blocking(mpps.performed_steps)
    assert listed == []


async def test_cancelled_order_keeps_its_status_and_the_pps_is_kept(index: Index) -> None:
    index.transaction_blocking(lambda c: orders.set_step_status(c, "A5", Status.CANCELLED, []))
    changes: list[str] = []
    step = performed("1.9.5", StepReference(sps_id="A5"))
    outcome = index.transaction_blocking(lambda conn: mpps.create_pps(conn, step, changes))
    assert outcome.accessions == ("A5",) and not outcome.unscheduled
    assert status_of(index, "A5") == "CANCELLED"
    assert "step A5 is CANCELLED: not moved to IN_PROGRESS" in changes
