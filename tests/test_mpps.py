"""MPPS SCP against a pynetdicom SCU on a real node (RIS-5.3, RIS-5.4, FLOW-1): N-CREATE moves
the order IN PROGRESS, N-SET COMPLETED / DISCONTINUED ends it, final steps refuse changes,
unknown and duplicate instances, unscheduled steps, bad attribute lists, audit."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS

from tests.conftest import config_args, mekong_cli
from tests.hl7peer import HisListener, Received
from tests.nodeproc import NodeProcess, free_port
from tests.worklist_support import (
    NAME,
    get_order,
    mpps_association,
    send_hl7,
    step_keys,
    worklist,
)
from tools.hl7send import orm

TODAY = time.strftime("%Y%m%d")


@pytest.fixture(scope="module")
def ris(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    folder = tmp_path_factory.mktemp("mpps")
    node = NodeProcess(folder / "data", extra_args=config_args(folder / "n.toml", workers=2))
    yield node.start()
    node.stop()


def scheduled(node: NodeProcess, accession: str, station: str = "CTMPPS") -> dict[str, Any]:
    message = orm(f"NW-{accession}", accession, modality="CT", station=station,
                  start=f"{TODAY}100000")  # fmt: skip
    assert send_hl7(node, message)["code"] == "AA"
    return get_order(node, accession)


def in_progress(order: dict[str, Any] | None, **reference: str) -> Dataset:
    """An N-CREATE attribute list (PS3.4 F.7.2-1) for ``order``'s first step, or unscheduled."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    item = Dataset()
    if order is not None:
        item.StudyInstanceUID = order["procedure"]["study_uid"]
        item.AccessionNumber = order["accession"]
        item.RequestedProcedureID = order["procedure"]["id"]
        item.ScheduledProcedureStepID = order["steps"][0]["sps_id"]
    for key, value in reference.items():
        setattr(item, key, value)
    item.ReferencedStudySequence = []
    ds.ScheduledStepAttributesSequence = [item]
    ds.PatientName = NAME
    ds.PatientID = "BN001"
    ds.PatientBirthDate = "19800115"
    ds.PatientSex = "F"
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "CTMPPS"
    ds.PerformedStationName = ""
    ds.PerformedLocation = ""
    ds.PerformedProcedureStepStartDate = TODAY
    ds.PerformedProcedureStepStartTime = "101500"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepDescription = "CT sọ não"
    ds.PerformedProcedureStepEndDate = None
    ds.PerformedProcedureStepEndTime = None
    ds.Modality = "CT"
    ds.StudyID = "1"
    ds.PerformedSeriesSequence = []
    return ds


def final(status: str, images: int = 2) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = TODAY
    ds.PerformedProcedureStepEndTime = "103000"
    series = Dataset()
    series.SeriesInstanceUID = generate_uid()
    series.SeriesDescription = "Sọ não không tiêm"
    series.ProtocolName = "HEAD"
    series.RetrieveAETitle = "MEKONG"
    series.PerformingPhysicianName = ""
    series.OperatorsName = ""
    references = []
    for _ in range(images):
        image = Dataset()
        image.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        image.ReferencedSOPInstanceUID = generate_uid()
        references.append(image)
    series.ReferencedImageSequence = references
    series.ReferencedNonImageCompositeSOPInstanceSequence = []
    ds.PerformedSeriesSequence = [series]
    return ds


def create(assoc, ds: Dataset, uid: str) -> Dataset:  # type: ignore[no-untyped-def]
    status, _ = assoc.send_n_create(ds, MPPS, uid)
    return status


def modify(assoc, ds: Dataset, uid: str) -> Dataset:  # type: ignore[no-untyped-def]
    status, _ = assoc.send_n_set(ds, MPPS, uid)
    return status


def rows(node: NodeProcess, sql: str, *args: Any) -> list[tuple]:
    with closing(sqlite3.connect(f"file:{node.data_dir / 'index.db'}?mode=ro", uri=True)) as db:
        return db.execute(sql, args).fetchall()


def test_mpps_moves_the_order_in_progress_then_completed(ris: NodeProcess) -> None:
    order = scheduled(ris, "MPPS0001")
    keys = ("AccessionNumber=MPPS0001", *step_keys(ScheduledStationAETitle="CTMPPS"))
    assert len(worklist(ris, *keys).items) == 1
    uid = generate_uid()
    assoc = mpps_association(ris)
    try:
        assert create(assoc, in_progress(order), uid).Status == 0x0000
        started = get_order(ris, "MPPS0001")
        assert started["status"] == "IN_PROGRESS"
        assert started["steps"][0]["status"] == "IN_PROGRESS"
        assert worklist(ris, *keys).items == []  # no longer offered to the modalities

        assert modify(assoc, final("COMPLETED"), uid).Status == 0x0000
        done = get_order(ris, "MPPS0001")
        assert (done["status"], done["steps"][0]["status"]) == ("COMPLETED", "COMPLETED")

        again = modify(assoc, final("DISCONTINUED"), uid)
        assert (again.Status, again.ErrorID) == (0x0110, 0xA710)
        assert "may no longer be updated" in again.ErrorComment
        assert modify(assoc, final("COMPLETED"), generate_uid()).Status == 0x0112
        assert create(assoc, in_progress(order), uid).Status == 0x0111
    finally:
        assoc.release()
    assert get_order(ris, "MPPS0001")["status"] == "COMPLETED"
    [(status, unscheduled, name, attributes)] = rows(
        ris, "SELECT status, unscheduled, patient_name, attributes FROM ris_pps WHERE sop_uid=?",
        uid)  # fmt: skip
    assert (status, unscheduled, name) == ("COMPLETED", 0, NAME)
    assert "COMPLETED" in attributes
    series = rows(ris, "SELECT s.description, s.images FROM ris_pps_series s JOIN ris_pps p "
                       "ON p.id = s.pps_fk WHERE p.sop_uid = ?", uid)  # fmt: skip
    assert series == [("Sọ não không tiêm", 2)]


def test_discontinued_step_discontinues_the_order(ris: NodeProcess) -> None:
    order = scheduled(ris, "MPPS0002")
    uid = generate_uid()
    assoc = mpps_association(ris)
    try:
        reference = {"ScheduledProcedureStepID": ""}  # linked by accession alone
        assert create(assoc, in_progress(order, **reference), uid).Status == 0x0000
        assert get_order(ris, "MPPS0002")["status"] == "IN_PROGRESS"
        assert modify(assoc, final("DISCONTINUED", images=0), uid).Status == 0x0000
    finally:
        assoc.release()
    assert get_order(ris, "MPPS0002")["status"] == "DISCONTINUED"


def test_unscheduled_step_is_stored_and_flagged(ris: NodeProcess) -> None:
    uid = generate_uid()
    assoc = mpps_association(ris)
    try:
        ds = in_progress(None, StudyInstanceUID=generate_uid(), AccessionNumber="",
                         ScheduledProcedureStepID="")  # fmt: skip
        assert create(assoc, ds, uid).Status == 0x0000
        assert modify(assoc, final("COMPLETED"), uid).Status == 0x0000
    finally:
        assoc.release()
    [(status, unscheduled, note)] = rows(
        ris, "SELECT status, unscheduled, link_note FROM ris_pps WHERE sop_uid = ?", uid
    )
    assert (status, unscheduled) == ("COMPLETED", 1)
    assert note.startswith("unscheduled: no scheduled step with Study Instance UID")


def test_bad_attribute_lists_are_refused(ris: NodeProcess) -> None:
    order = scheduled(ris, "MPPS0003")
    assoc = mpps_association(ris)
    try:
        missing = in_progress(order)
        del missing.PerformedProcedureStepStatus
        assert create(assoc, missing, generate_uid()).Status == 0x0120
        completed = in_progress(order)
        completed.PerformedProcedureStepStatus = "COMPLETED"
        assert create(assoc, completed, generate_uid()).Status == 0x0106
        bad_date = in_progress(order)
        with pytest.warns(UserWarning, match="Invalid value for VR DA"):
            bad_date.PerformedProcedureStepStartDate = "2026-11-26"
        status = create(assoc, bad_date, generate_uid())
        assert status.Status == 0x0106 and "PerformedProcedureStepStartDate" in status.ErrorComment
        uid = generate_uid()
        assert create(assoc, in_progress(order), uid).Status == 0x0000
        wrong = Dataset()
        wrong.PerformedProcedureStepStatus = "FINISHED"
        assert modify(assoc, wrong, uid).Status == 0x0106
    finally:
        assoc.release()
    assert get_order(ris, "MPPS0003")["status"] == "IN_PROGRESS"  # only the good one applied


def test_ae_without_store_is_refused_and_everything_is_audited(ris: NodeProcess) -> None:
    added = mekong_cli("ae", "add", "VIEWER", "--host", "127.0.0.1", "--port", "104",
                       "--allow", "echo,find", "--data", str(ris.data_dir))  # fmt: skip
    assert added.returncode == 0, added.stderr
    time.sleep(2.5)  # the AE table is reloaded every second, by each DICOM process
    order = scheduled(ris, "MPPS0004")
    assoc = mpps_association(ris, aet="VIEWER")
    try:
        assert create(assoc, in_progress(order), generate_uid()).Status == 0x0124
    finally:
        assoc.release()
    assert get_order(ris, "MPPS0004")["status"] == "SCHEDULED"
    time.sleep(1.0)  # the audit log writes in batches
    audited = rows(ris, "SELECT action, outcome, actor FROM audit_event "
                        "WHERE action LIKE 'mpps.%'")  # fmt: skip
    assert ("mpps.create", "success", "MODALITY") in audited
    assert ("mpps.set", "success", "MODALITY") in audited
    assert ("mpps.set", "failure", "MODALITY") in audited
    assert ("mpps.create", "failure", "VIEWER") in audited


def test_mpps_status_changes_reach_the_his(tmp_path: Path) -> None:
    """MPPS → outbound HL7: IN PROGRESS then COMPLETED arrive at a test MLLP listener, once
    each, whichever of the two DICOM processes took the association."""
    his = HisListener(free_port()).start()
    config = tmp_path / "n.toml"
    config.write_text("\n".join([
        "[dicom]", "workers = 2", "[hl7]", "retry_initial_seconds = 0.2",
        "[[hl7.destinations]]", 'name = "his"', 'host = "127.0.0.1"', f"port = {his.port}",
        'message_type = "ORM^O01"', 'receiving_application = "HIS"',
        'receiving_facility = "BVCR"',
    ]) + "\n")  # fmt: skip
    node = NodeProcess(tmp_path / "data", extra_args=["--config", str(config)]).start()
    try:
        order = scheduled(node, "MPPSHIS1")
        uid = generate_uid()
        assoc = mpps_association(node)
        try:
            assert create(assoc, in_progress(order), uid).Status == 0x0000
            assert modify(assoc, final("COMPLETED"), uid).Status == 0x0000
        finally:
            assoc.release()

        def states(got: list[Received]) -> list[str]:
            return [m.field("ORC", 5) for m in got if m.field("OBR", 18) == "MPPSHIS1"]

        his.wait_for(lambda got: states(got) == ["IP", "CM"])
        time.sleep(1.5)  # nothing further arrives
        assert states(his.received) == ["IP", "CM"]
        [started] = [m for m in his.received if m.field("ORC", 5) == "IP"]
        assert started.field("PID", 5).encode() == NAME.encode()
    finally:
        node.stop()
        his.stop()
