"""Data for the console benchmark: many studies in the index, a day's orders, console users.

Studies go through the archive's own :class:`IndexWriter` (the one path every stored instance
takes into the index: patient/study/series upserts, counters, ModalitiesInStudy), one instance
per study, without the blob files: the console pages read the index only. The rows are then
marked reconciled (an archive that was imported before the RIS), so the reconciler does not
work through them during the run; a few are listed as unmatched. Orders go through the RIS
domain (``orders.create_order``) for patients of those studies, so an order's imaging
history is real. Users are made with the account functions the CLI uses.
"""

from __future__ import annotations

import asyncio
import datetime
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, update

from mekong.shared.auth.accounts import create_user
from mekong.shared.db import schema as t
from mekong.shared.db.index import Index
from mekong.shared.db.writer import Submission
from mekong.shared.dicom.header import InstanceRecord
from mekong.shared.ris import catalogue, links, orders
from mekong.shared.ris.matching import UNKNOWN_KEY
from mekong.shared.ris.model import (
    OrderData,
    OrderRequest,
    PatientData,
    ProcedureData,
    StepData,
    VisitData,
)
from tools.bench.synthetic import MODALITIES, Study, plan_small_studies

EXPLICIT_LE = "1.2.840.10008.1.2.1"
ROOMS = tuple(f"P{n:02d}" for n in range(1, 11))  # ten rooms, two per modality below
ROOM_MODALITY = dict(zip(ROOMS, ("CR", "CR", "CT", "CT", "MR", "MR", "US", "US", "DX", "MG"),
                         strict=True))  # fmt: skip
SERVICE = {"CR": "Chụp X quang ngực thẳng", "CT": "Chụp CT sọ não không tiêm thuốc",
           "MR": "Chụp MRI cột sống thắt lưng", "US": "Siêu âm ổ bụng tổng quát",
           "DX": "Chụp X quang khớp gối", "MG": "Chụp X quang tuyến vú"}  # fmt: skip
PRIORITY = (("STAT", 3), ("HIGH", 7), ("ROUTINE", 90))
PATIENT_CLASS = (("O", 70), ("I", 25), ("E", 5))
UNMATCHED = 40  # studies in the unmatched list (a realistic backlog)


@dataclass(frozen=True)
class Seeded:
    studies: list[Study]
    accessions: list[str]  # the orders, in creation order
    today: str  # YYYYMMDD
    seconds: dict[str, float]


def records(studies: list[Study]) -> Iterator[InstanceRecord]:
    """One instance per study, as the header parser would read it from the synthetic files."""
    for study in studies:
        _, sop_class, body_part, description = MODALITIES[study.modality]
        series_uid = f"{study.study_uid}.1"
        yield InstanceRecord(
            sop_uid=f"{series_uid}.1", sop_class_uid=sop_class, study_uid=study.study_uid,
            series_uid=series_uid, transfer_syntax=EXPLICIT_LE,
            patient_id=study.patient.patient_id, patient_name=study.patient.name,
            birth_date=study.patient.birth_date, sex=study.patient.sex,
            study_date=study.date, study_time=study.time, accession=f"BV{2_000_000 + study.index}",
            study_id=str(study.index + 1), study_description=description,
            modality=study.modality, series_number="1", series_description=description,
            body_part=body_part, series_date=study.date, series_time=study.time,
            instance_number="1", rows=16, columns=16, charset="ISO_IR 192",
        )  # fmt: skip


def fill_index(index: Index, data_dir: Path, studies: list[Study]) -> None:
    """Every study through the index writer (group commits of up to 128), then marked
    reconciled."""
    index.start_writer(lambda _dirs: None, "keep_first")
    assert index.writer is not None
    blob = data_dir / "storage" / "absent"
    pending = []
    for n, rec in enumerate(records(studies)):
        digest = f"{n:064x}"
        pending.append(index.writer._enqueue(Submission(rec, digest, 2048, blob)))
        if len(pending) >= 2000:
            for future in pending:
                future.result()
            pending.clear()
    for future in pending:
        future.result()
    index.transaction_blocking(
        lambda conn: conn.execute(update(t.instance).values(recon=1))
    )  # fmt: skip


def _weighted(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def order_requests(
    studies: list[Study], count: int, today: datetime.date, seed: int
) -> list[OrderRequest]:
    """``count`` orders over today and the next four days (most today), patients of the
    index, rooms round robin, 07:00-17:00."""
    rng = random.Random(seed + 5)
    patients = list({s.patient.patient_id: s.patient for s in studies}.values())
    out = []
    for n in range(count):
        patient = rng.choice(patients)
        room = ROOMS[n % len(ROOMS)]
        modality = ROOM_MODALITY[room]
        day = today + datetime.timedelta(days=min(4, int(rng.expovariate(1.0))))
        minutes = 7 * 60 + rng.randrange(600)
        out.append(OrderRequest(
            patient=PatientData(patient.patient_id, "", patient.name, patient.birth_date,
                                patient.sex),
            visit=VisitData(patient_class=_weighted(rng, PATIENT_CLASS)),
            order=OrderData(accession=f"A{today:%y%m%d}{n:05d}",
                            priority=_weighted(rng, PRIORITY)),
            procedure=ProcedureData(service_code=f"{modality}001", description=SERVICE[modality]),
            steps=[StepData(modality=modality, station_ae=f"{room}{modality}", room=room,
                            start_date=day.strftime("%Y%m%d"),
                            start_time=f"{minutes // 60:02d}{minutes % 60:02d}00")],
            source="BENCH",
        ))  # fmt: skip
    return out


def fill_ris(index: Index, studies: list[Study], count: int, seed: int) -> list[str]:
    """Rooms, ``count`` orders (transactions of 500) and the unmatched backlog."""
    today = datetime.date.today()
    requests = order_requests(studies, count, today, seed)

    def rooms(conn: Connection) -> None:
        for room in ROOMS:
            catalogue.upsert_entry(conn, "room", {"code": room, "name": f"Phòng {room}"})
        for study in studies[-UNMATCHED:]:
            accession = f"BV{2_000_000 + study.index}"
            links.unmatched(conn, study.study_uid, UNKNOWN_KEY,
                            f"Accession Number {accession!r} names no order", None)  # fmt: skip

    index.transaction_blocking(rooms)
    accessions: list[str] = []
    for start in range(0, len(requests), 500):
        batch = requests[start : start + 500]

        def work(conn: Connection, batch: list[OrderRequest] = batch) -> None:
            accessions.extend(orders.create_order(conn, r, []) for r in batch)

        index.transaction_blocking(work)
    return accessions


async def add_users(index: Index, count: int, role: str) -> dict[str, str]:
    """``count`` users of ``role``: {name: one-time password}."""
    return {f"bench{n:03d}": await create_user(index.engine, f"bench{n:03d}", role)
            for n in range(count)}  # fmt: skip


async def seed(
    data_dir: Path, n_studies: int, n_orders: int, n_users: int, role: str, seed: int
) -> tuple[Seeded, dict[str, str]]:
    """A fresh data folder with everything the run needs; returns it and the users."""
    data_dir.mkdir(parents=True)
    studies = plan_small_studies(n_studies, seed, study_size=1)
    seconds: dict[str, float] = {}
    index = await Index.open(data_dir / "index.db")
    try:
        began = time.perf_counter()
        await asyncio.to_thread(fill_index, index, data_dir, studies)
        seconds["studies"] = time.perf_counter() - began
        began = time.perf_counter()
        accessions = await asyncio.to_thread(fill_ris, index, studies, n_orders, seed)
        seconds["orders"] = time.perf_counter() - began
        users = await add_users(index, n_users, role)
    finally:
        await index.close()
    today = datetime.date.today().strftime("%Y%m%d")
    return Seeded(studies, accessions, today, seconds), users
