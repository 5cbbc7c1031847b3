"""RIS domain without a network: status machine, orders, patients, schema = migrations."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from mekong.shared.db import ris_schema, schema_auth, schema_hub  # noqa: F401  (every table in metadata)
from mekong.shared.db.index import Index
from mekong.shared.db.schema import metadata
from mekong.shared.ris import catalogue, orders, patients
from mekong.shared.ris.errors import Duplicate, IllegalTransition, Invalid, Missing, NotFound
from mekong.shared.ris.model import (
    OrderData,
    OrderKey,
    OrderRequest,
    PatientData,
    ProcedureData,
    StepData,
)
from mekong.shared.ris.status import ALLOWED, FINAL, Status, check_transition, order_status
from tests.conftest import mekong_cli

NAME = "Nguyễn^Thị Hồng Nhung"


@pytest.fixture
async def index(tmp_path: Path):
    index = await Index.open(tmp_path / "index.db")
    yield index
    await index.close()


def request(accession: str = "ACC1", patient_id: str = "BN001", **step: str) -> OrderRequest:
    return OrderRequest(
        patient=PatientData(patient_id, "BVCR", NAME, "19800115", "F"),
        order=OrderData(accession=accession, placer_number=f"P-{accession}"),
        procedure=ProcedureData(service_code="XQ001", description="Chụp X quang ngực thẳng"),
        steps=[StepData(modality="CR", station_ae="CR1", start_date="20261126", **step)],
        source="HIS^BVCR",
    )


def test_every_illegal_transition_is_refused() -> None:
    for current in Status:
        for new in Status:
            if new in ALLOWED[current]:
                check_transition(current, new)
            else:
                with pytest.raises(IllegalTransition):
                    check_transition(current, new)
    assert all(not ALLOWED[s] for s in FINAL)
    with pytest.raises(IllegalTransition, match="COMPLETED is final"):
        check_transition(Status.COMPLETED, Status.CANCELLED)


def test_order_status_follows_steps() -> None:
    assert order_status([Status.SCHEDULED, Status.ARRIVED]) == Status.ARRIVED
    assert order_status([Status.COMPLETED, Status.SCHEDULED]) == Status.IN_PROGRESS
    assert order_status([Status.COMPLETED, Status.CANCELLED]) == Status.COMPLETED
    assert order_status([Status.CANCELLED, Status.CANCELLED]) == Status.CANCELLED
    assert order_status([Status.DISCONTINUED, Status.CANCELLED]) == Status.DISCONTINUED


async def test_migrations_match_the_schema(index: Index) -> None:
    diff = index.reading_blocking(
        lambda conn: compare_metadata(MigrationContext.configure(conn), metadata)
    )
    assert diff == []


async def test_create_change_and_cancel(index: Index) -> None:
    write, read = index.transaction_blocking, index.reading_blocking
    changes: list[str] = []
    assert write(lambda conn: orders.create_order(conn, request(), changes)) == "ACC1"
    order = read(lambda conn: orders.get_order(conn, "ACC1"))
    assert order["patient"]["name"].encode() == NAME.encode()
    assert order["status"] == "SCHEDULED" and order["steps"][0]["sps_id"] == "ACC1"
    assert order["procedure"]["study_uid"].startswith("2.25.")

    change = OrderRequest(PatientData(""), steps=[StepData(station_ae="CR2", start_time="0930")])

    def change_then_cancel(conn: Connection) -> None:
        orders.change_order(conn, OrderKey(placer_number="P-ACC1", source="HIS^BVCR"), change,
                            changes)  # fmt: skip
        orders.set_order_status(conn, OrderKey("ACC1"), Status.CANCELLED, changes)

    write(change_then_cancel)
    order = read(lambda conn: orders.get_order(conn, "ACC1"))
    assert order["status"] == "CANCELLED"
    assert order["steps"][0]["station_ae"] == "CR2" and order["steps"][0]["start_time"] == "093000"
    with pytest.raises(IllegalTransition):
        write(lambda conn: orders.set_order_status(conn, OrderKey("ACC1"), Status.ARRIVED, []))


async def test_errors_leave_nothing(index: Index) -> None:
    write, read = index.transaction_blocking, index.reading_blocking
    write(lambda conn: orders.create_order(conn, request(), []))
    for bad, error in (
        (request(), Duplicate),
        (request("ACC2", sps_id="ACC1"), Duplicate),
        (request("ACC3", start_time="2561"), Invalid),
        (request("ACC4", patient_id=""), Missing),
        (request("ACC5" * 5), Invalid),
    ):
        with pytest.raises(error):
            write(lambda conn, bad=bad: orders.create_order(conn, bad, []))
    assert len(read(orders.list_orders)) == 1
    assert read(lambda conn: patients.find_patient(conn, "", "BVCR")) is None
    with pytest.raises(NotFound):
        write(lambda conn: orders.set_order_status(conn, OrderKey("NOPE"), Status.CANCELLED, []))


async def test_defaults_from_catalogue_and_devices(index: Index) -> None:
    def work(conn: Connection) -> str:
        catalogue.upsert_entry(
            conn,
            "service",
            {"code": "SA01", "name": "Siêu âm bụng", "modality": "US", "bhyt_min_minutes": 6},
        )
        catalogue.upsert_entry(
            conn, "device", {"ae_title": "US_P3", "modality": "US", "room": "P3"}
        )
        req = OrderRequest(
            PatientData("BN9", "", "Trần^Văn Đức"),
            procedure=ProcedureData(service_code="SA01"),
            steps=[StepData()],
        )
        return orders.create_order(conn, req, [])  # fmt: skip

    accession = index.transaction_blocking(work)
    order = index.reading_blocking(lambda conn: orders.get_order(conn, accession))
    assert accession.startswith("MK") and order["filler_number"] == accession
    step = order["steps"][0]
    assert (step["modality"], step["station_ae"], step["room"]) == ("US", "US_P3", "P3")
    assert order["procedure"]["description"] == "Siêu âm bụng"


async def test_merge_moves_orders(index: Index) -> None:
    def work(conn: Connection) -> None:
        orders.create_order(conn, request("A1", "OLD"), [])
        orders.create_order(conn, request("A2", "NEW"), [])
        patients.merge_patients(conn, PatientData("NEW", "BVCR"), PatientData("OLD", "BVCR"), [])

    index.transaction_blocking(work)
    found = index.reading_blocking(orders.list_orders)
    assert sorted(o["accession"] for o in found if o["patient"]["id"] == "NEW") == ["A1", "A2"]
    survivor = index.reading_blocking(lambda conn: patients.find_patient(conn, "OLD", "BVCR"))
    assert survivor.patient_id == "NEW"


async def test_async_transactions_run_on_the_ris_thread(index: Index) -> None:

    names = await index.transaction(lambda conn: threading.current_thread().name)
    assert names.startswith("ris")
    assert await index.reading(lambda conn: len(orders.list_orders(conn))) == 0


def test_cli_master_files(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    added = mekong_cli("ris", "add", "device", "ae_title=US_P3", "modality=us", "room=P3",
                       "name=Siêu âm P3", "--data", data)  # fmt: skip
    assert added.returncode == 0, added.stderr
    listing = mekong_cli("ris", "list", "device", "--data", data)
    assert "ae_title=US_P3  name=Siêu âm P3  modality=US  room=P3" in listing.stdout
    bad = mekong_cli("ris", "add", "device", "ae_title=" + "X" * 17, "--data", data)
    assert bad.returncode == 2 and "AE title" in bad.stderr
    assert mekong_cli("ris", "remove", "device", "US_P3", "--data", data).returncode == 0
    assert mekong_cli("ris", "remove", "device", "US_P3", "--data", data).returncode == 1
