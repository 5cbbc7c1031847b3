"""Reconciliation and outbound HL7 without a network: coercion of a Part 10 file, the index
writer's Replacement, the match cascade, outbox states and back-off, message text."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pydicom.config
import pytest
from sqlalchemy import Connection, select

from mekong.shared.db import schema as t
from mekong.shared.db.index import Index
from mekong.shared.db.writer import Outcome, Replacement, Submission
from mekong.shared.dicom import configure_pydicom
from mekong.shared.dicom.coerce import Coercion, coerce_instance
from mekong.shared.dicom.header import parse_header, record_from
from mekong.shared.hl7.outbound import outbox
from mekong.shared.hl7.outbound.build import Addressing, StatusEvent, build_message
from mekong.shared.hl7.outbound.outbox import Destination, RetryPolicy
from mekong.shared.ris import matching, orders
from mekong.shared.ris.matching import Match, NoMatch, StudyFacts, Window
from mekong.shared.ris.model import (
    OrderData,
    OrderKey,
    OrderRequest,
    PatientData,
    ProcedureData,
    StepData,
)
from mekong.shared.storage.blobs import BlobStore
from tools import gendata

NAME = "Nguyễn^Thị Hồng Nhung"
ORDER_VALUES = {"PatientName": NAME, "PatientID": "BN001", "IssuerOfPatientID": "BVCR",
                "AccessionNumber": "ACC1"}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _pydicom() -> Iterator[None]:
    """pydicom as the node runs it, for this module only (the setting is process-wide)."""
    before = pydicom.config.settings.reading_validation_mode
    configure_pydicom()
    yield
    pydicom.config.settings.reading_validation_mode = before


def ct(tmp_path: Path, **attributes: str) -> bytes:
    [path] = gendata.ct_series(tmp_path / "ct", count=1, rows=16, cols=16, patient_id="MOD1",
                               patient_name="MODALITY^NAME")  # fmt: skip
    ds = pydicom.dcmread(path)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_coercion_keeps_pixels_and_records_the_originals(tmp_path: Path) -> None:
    data = ct(tmp_path)
    at = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    item = {"AccessionNumber": "ACC1", "ScheduledProcedureStepID": "SPS1"}
    result = coerce_instance(data, Coercion(ORDER_VALUES, item, source="CT1"), at)
    assert result is not None
    ds = pydicom.dcmread(io.BytesIO(result.data))
    original = pydicom.dcmread(io.BytesIO(data))
    assert ds.PixelData == original.PixelData and ds.SOPInstanceUID == original.SOPInstanceUID
    assert ds.SpecificCharacterSet == "ISO_IR 192" and NAME.encode() in result.data
    [entry] = ds.OriginalAttributesSequence
    assert entry.AttributeModificationDateTime == "20261126093000.000000+0700"
    assert (entry.ModifyingSystem, entry.SourceOfPreviousValues) == ("MEKONG", "CT1")
    before = entry.ModifiedAttributesSequence[0]
    assert str(before.PatientName) == "MODALITY^NAME" and before.IssuerOfPatientID == ""
    assert before.RequestAttributesSequence == []  # absent before: recorded empty
    assert (result.record.patient_id, result.before.patient_id) == ("BN001", "MOD1")
    assert coerce_instance(result.data, Coercion(ORDER_VALUES, item)) is None  # idempotent
    again = coerce_instance(result.data, Coercion({**ORDER_VALUES, "PatientName": "Trần^An"}))
    assert again is not None
    assert len(pydicom.dcmread(io.BytesIO(again.data)).OriginalAttributesSequence) == 2


def test_coercion_recodes_latin1_text_to_utf8(tmp_path: Path) -> None:
    source = pydicom.dcmread(io.BytesIO(ct(tmp_path)))
    source.SpecificCharacterSet = "ISO_IR 100"
    source.InstitutionName = "Hôpital Müller"
    buffer = io.BytesIO()
    source.save_as(buffer, enforce_file_format=True)
    assert "Hôpital Müller".encode("latin-1") in buffer.getvalue()
    result = coerce_instance(buffer.getvalue(), Coercion(ORDER_VALUES))
    assert result is not None and "Hôpital Müller".encode() in result.data
    assert pydicom.dcmread(io.BytesIO(result.data)).InstitutionName == "Hôpital Müller"


def test_trailing_name_separators_are_not_a_change(tmp_path: Path) -> None:
    data = ct(tmp_path, PatientName="NGUYEN^AN^^", PatientID="BN001")
    assert (
        coerce_instance(data, Coercion({"PatientName": "NGUYEN^AN", "PatientID": "BN001"})) is None
    )


@pytest.fixture
async def index(tmp_path: Path):
    index = await Index.open(tmp_path / "index.db")
    blobs = BlobStore(tmp_path)
    index.start_writer(blobs.sync_dirs, "keep_first")
    index.blobs = blobs  # type: ignore[attr-defined]
    yield index
    await index.close()


def _store(index: Index, data: bytes) -> str:
    blobs: BlobStore = index.blobs  # type: ignore[attr-defined]
    blob = blobs.write(data)
    record = record_from(parse_header(data))
    assert index.writer is not None
    index.writer.submit_blocking(Submission(record, blob.digest, blob.size, blob.path, "CT1",
                                            lambda _: blobs.release(blob.hold)))  # fmt: skip
    return blob.digest


async def test_replacement_swaps_the_row_and_refiles_the_patient(
    index: Index, tmp_path: Path
) -> None:
    data = ct(tmp_path)
    old = _store(index, data)
    result = coerce_instance(data, Coercion(ORDER_VALUES))
    assert result is not None
    blobs: BlobStore = index.blobs  # type: ignore[attr-defined]
    blob = blobs.write(result.data)
    swap = Replacement(result.record, old, blob.digest, blob.size, blob.path, ("MOD1", ""),
                       lambda gone: blobs.release(blob.hold, gone))  # fmt: skip
    assert index.writer is not None
    assert index.writer.submit_blocking(swap).outcome == Outcome.COERCED
    assert not blobs.path_for(old).exists()

    def rows(conn: Connection) -> tuple:
        instance = conn.execute(select(t.instance.c.digest, t.instance.c.recon)).one()
        patients = conn.execute(select(t.patient.c.patient_id, t.patient.c.name)).all()
        return tuple(instance), [tuple(p) for p in patients]

    assert index.reading_blocking(rows) == ((blob.digest, 1), [("BN001", NAME)])
    stale = Replacement(result.record, old, old, 0, blobs.path_for(old))
    assert index.writer.submit_blocking(stale).outcome == Outcome.CONFLICT


def _order(conn: Connection, accession: str, patient: str = "BN001", **step: str) -> str:
    request = OrderRequest(
        patient=PatientData(patient, "BVCR", NAME, "19800115", "F"),
        order=OrderData(accession=accession),
        procedure=ProcedureData(procedure_id=f"RP-{accession}", study_uid=f"1.2.3.{accession[1:]}"),
        steps=[StepData(modality="CT", station_ae="CT1", start_date="20261126",
                        start_time="090000", sps_id=f"SPS-{accession}", **step)],
    )  # fmt: skip
    return orders.create_order(conn, request, [])


async def test_match_cascade(index: Index) -> None:
    for n in (1, 2, 3, 4):
        index.transaction_blocking(lambda conn, n=n: _order(conn, f"A{n}"))

    def match(**facts: object) -> Match | NoMatch:
        given = StudyFacts("9.9", **facts)  # type: ignore[arg-type]
        return index.reading_blocking(lambda c: matching.match_study(c, given, Window()))

    by = {k: match(**v) for k, v in {
        "accession": {"accession": "A1"}, "qr": {"accession": "A:A2|P:BN001"},
        "request": {"request_accessions": ("A3",)}, "sps": {"sps_ids": ("SPS-A4",)},
        "procedure": {"procedure_ids": ("RP-A1",)},
    }.items()}  # fmt: skip
    assert {k: (v.order.accession, v.by) for k, v in by.items() if isinstance(v, Match)} == {
        "accession": ("A1", "accession"), "qr": ("A2", "accession"), "request": ("A3", "accession"),
        "sps": ("A4", "sps_id"), "procedure": ("A1", "procedure_id"),
    }  # fmt: skip
    uid = index.reading_blocking(lambda c: matching.match_study(c, StudyFacts("1.2.3.2"), Window()))
    assert isinstance(uid, Match) and uid.by == "study_uid"
    nothing = match()
    assert isinstance(nothing, NoMatch) and nothing.code == "NO_KEY"
    near = match(patient_id="BN001", modality="CT", calling_ae="CT1", study_date="20261126",
                 study_time="100000", accession="ZZ")  # fmt: skip
    assert isinstance(near, NoMatch) and near.code == "UNKNOWN_KEY"
    assert near.suggestion is not None and "suggested order" in near.reason
    far = match(patient_id="BN001", modality="CT", calling_ae="CT1", study_date="20261127")
    other_station = match(patient_id="BN001", modality="CT", calling_ae="CT9",
                          study_date="20261126", study_time="100000")  # fmt: skip
    assert far.suggestion is None and other_station.suggestion is None  # type: ignore[union-attr]


def test_back_off_is_exponential_and_capped() -> None:
    policy = RetryPolicy(max_attempts=5, initial=2, cap=30)
    assert [policy.delay(n) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]


async def test_outbox_fans_out_retries_and_dead_letters(index: Index) -> None:
    dests = [Destination("his", "h", 1, "ORM^O01"), Destination("lis", "h", 2, "OMI^O23"),
             Destination("off", "h", 3, "ORM^O01", enabled=False)]  # fmt: skip
    index.transaction_blocking(lambda conn: outbox.sync_destinations(conn, dests))
    event = StatusEvent("ARRIVED", "ARRIVED", "ACC1", patient_name=NAME)
    ids = index.transaction_blocking(lambda conn: outbox.enqueue(conn, event))
    assert len(ids) == 2 and len(set(ids)) == 2
    head = index.reading_blocking(lambda conn: outbox.head(conn, "his"))
    policy = RetryPolicy(max_attempts=2, initial=1, cap=1)
    state = index.transaction_blocking(lambda c: outbox.mark_failed(c, head.id, "down", policy))
    assert state == "PENDING"
    state = index.transaction_blocking(lambda c: outbox.mark_failed(c, head.id, "down", policy))
    assert state == "DEAD"
    row = index.reading_blocking(lambda conn: outbox.get(conn, head.id))
    assert row is not None and row["last_error"].startswith("not delivered after 2 attempts")
    again = index.transaction_blocking(lambda conn: outbox.resend(conn, head.id))
    assert (again["state"], again["attempts"], again["control_id"]) == ("PENDING", 0, ids[0])
    index.transaction_blocking(lambda conn: outbox.sync_destinations(conn, dests[1:2]))
    assert [d.name for d in index.reading_blocking(outbox.destinations)] == ["lis"]


def test_message_text_escapes_values_and_keeps_components() -> None:
    event = StatusEvent(
        "IMAGES_AVAILABLE", "IN_PROGRESS", "ACC|1", patient_id="BN&1", issuer="BVCR",
        patient_name=NAME, location="KHOA^P12", referring_physician="Lê^Văn Tám",
        description="Chụp X quang", service_code="XQ001", study_uids=("1.2.3", "1.2.4"),
    )  # fmt: skip
    to = Addressing("MEKONG", "HIS", "BVCR", "https://pacs.example/")
    text = build_message(event, "ORM^O01", "MK1", to)
    segments = {s.split("|")[0]: s.split("|") for s in text.strip("\r").split("\r")}
    assert segments["PID"][3] == "BN\\T\\1^^^BVCR" and segments["PID"][5] == NAME
    assert segments["PV1"][3] == "KHOA^P12" and segments["PV1"][8] == "^Lê^Văn Tám"
    assert segments["OBR"][18] == "ACC\\F\\1" and segments["OBR"][25] == "R"
    assert segments["ORC"][5] == "IP" and segments["ZDS"][1] == "1.2.3^^Application^DICOM"
    assert segments["OBX"][5] == ("https://pacs.example/viewer?StudyInstanceUIDs=1.2.3,1.2.4"
                                  "^MEKONG^IM^URL")  # fmt: skip
    omi = build_message(event, "OMI^O23", "MK2", to)
    order = [s.split("|")[0] for s in omi.strip("\r").split("\r")]
    assert order == ["MSH", "PID", "PV1", "ORC", "TQ1", "OBR", "OBX", "IPC"]


async def test_the_mpps_hook_records_the_change_and_queues_the_message(index: Index) -> None:
    from mekong.shared.ris import workflow
    from mekong.shared.ris.errors import IllegalTransition, NotFound
    from mekong.shared.ris.status import Status

    index.transaction_blocking(
        lambda conn: outbox.sync_destinations(conn, [Destination("his", "h", 1, "ORM^O01")])
    )
    index.transaction_blocking(lambda conn: _order(conn, "M1"))
    changes: list[str] = []
    accession = index.transaction_blocking(
        lambda conn: workflow.record_step_status(conn, "SPS-M1", Status.IN_PROGRESS, changes)
    )
    assert accession == "M1" and "HIS notified: IN_PROGRESS (1 destination(s))" in changes
    index.transaction_blocking(
        lambda conn: workflow.record_step_status(conn, "SPS-M1", Status.COMPLETED, [])
    )
    rows = index.reading_blocking(lambda conn: outbox.search(conn, accession="M1"))
    assert [r["event"] for r in rows] == ["COMPLETED", "IN_PROGRESS"]
    with pytest.raises(IllegalTransition):  # nothing queued for a refused change
        index.transaction_blocking(
            lambda conn: workflow.record_step_status(conn, "SPS-M1", Status.IN_PROGRESS, [])
        )
    with pytest.raises(NotFound):
        index.transaction_blocking(
            lambda conn: workflow.record_step_status(conn, "NOPE", Status.IN_PROGRESS, [])
        )
    assert len(index.reading_blocking(lambda conn: outbox.search(conn, accession="M1"))) == 2


async def test_the_listener_form_of_the_hook(index: Index) -> None:
    from types import SimpleNamespace

    from mekong.shared.ris import workflow
    from mekong.shared.ris.status import Status

    index.transaction_blocking(
        lambda conn: outbox.sync_destinations(conn, [Destination("his", "h", 1, "OMI^O23")])
    )
    index.transaction_blocking(lambda conn: _order(conn, "L1"))

    def mpps_started(conn: Connection) -> None:  # what an MPPS N-CREATE does, then announces
        orders.set_step_status(conn, "SPS-L1", Status.IN_PROGRESS, [])
        event = SimpleNamespace(accession="L1", previous="SCHEDULED", status="IN_PROGRESS",
                                cause="mpps")  # fmt: skip
        workflow.on_order_status_changed(conn, event)
        workflow.on_order_status_changed(conn, SimpleNamespace(**{**vars(event), "cause": "hl7"}))

    index.transaction_blocking(mpps_started)
    [row] = index.reading_blocking(lambda conn: outbox.search(conn, accession="L1"))
    assert (row["event"], row["message_type"]) == ("IN_PROGRESS", "OMI^O23")


async def test_uplink_rows_follow_a_rewrite_and_a_row_in_flight_defers_it(
    index: Index, tmp_path: Path
) -> None:
    from mekong.edge.uplink import outbox as uplink
    from mekong.shared.db.schema_uplink import uplink_outbox

    data = ct(tmp_path)
    old = _store(index, data)
    assert index.transaction_blocking(lambda c: uplink.enqueue_new(c, "hub", True)) == 0
    index.transaction_blocking(  # the reconciler saw it (an unmatched study: only marked)
        lambda c: c.execute(t.instance.update().values(recon=1))
    )
    assert index.transaction_blocking(lambda c: uplink.enqueue_new(c, "hub", True)) == 1
    blobs: BlobStore = index.blobs  # type: ignore[attr-defined]
    result = coerce_instance(data, Coercion(ORDER_VALUES))
    assert result is not None and index.writer is not None

    def swap() -> Outcome:
        blob = blobs.write(result.data)
        replacement = Replacement(result.record, old, blob.digest, blob.size, blob.path,
                                  settle=lambda gone: blobs.release(blob.hold, gone))  # fmt: skip
        return index.writer.submit_blocking(replacement).outcome  # type: ignore[union-attr]

    index.transaction_blocking(lambda c: c.execute(uplink_outbox.update().values(state="sending")))
    assert swap() == Outcome.BUSY and blobs.path_for(old).exists()
    index.transaction_blocking(lambda c: c.execute(uplink_outbox.update().values(state="queued")))
    assert swap() == Outcome.COERCED and not blobs.path_for(old).exists()
    digest = index.reading_blocking(lambda c: c.execute(select(uplink_outbox.c.digest)).scalar())
    assert digest != old and blobs.path_for(digest).exists()


async def test_idle_completion_leaves_a_step_with_an_mpps_to_it(index: Index) -> None:
    from mekong.shared.ris import mpps, workflow
    from mekong.shared.ris.status import Status

    index.transaction_blocking(lambda conn: _order(conn, "I1"))
    order_fk = index.reading_blocking(lambda c: orders.find_order(c, OrderKey("I1")).id)
    started = index.transaction_blocking(
        lambda conn: workflow.start_steps(conn, order_fk, "", "CT", [])
    )
    assert started == ["SPS-I1"]  # images came first, the reconciler started the step
    late = mpps.PerformedStep("1.2.3.99", Status.IN_PROGRESS, modality="CT",
                              references=(mpps.StepReference(sps_id="SPS-I1"),))  # fmt: skip
    index.transaction_blocking(lambda conn: mpps.create_pps(conn, late, []))  # MPPS after all
    changes: list[str] = []
    index.transaction_blocking(
        lambda conn: workflow.complete_steps(conn, order_fk, started, changes)
    )
    assert "step SPS-I1 has an MPPS: left to it" in changes
    order = index.reading_blocking(lambda conn: orders.get_order(conn, "I1"))
    assert order["steps"][0]["status"] == "IN_PROGRESS"
