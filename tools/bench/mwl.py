"""MWL benchmark: Modality Worklist C-FIND latency at N scheduled steps, Mekong beside Orthanc's
ModalityWorklists plugin, and HL7 ORM → item visible in the worklist.

    .venv/bin/python -m tools.bench.mwl [--steps 10000] [--queries 200] [--hl7-samples 200]
                                        [--no-orthanc]

1. Makes N scheduled steps (one order each; 30 days from today, 20 stations of 5 modalities,
   07:00-17:00, 2 000 Vietnamese patients) through the RIS domain functions
   (``orders.create_order``, in transactions of 500) in a fresh data folder, then starts a node
   on it (``--workers`` DICOM processes, default 1).
2. Orthanc 1.10 with its ModalityWorklists plugin gets the same N items as ``.wl`` files.
3. Each query kind is sent ``--queries`` times by a pynetdicom SCU the way a modality does
   (associate, C-FIND, release; timed from the A-ASSOCIATE-RQ to the last response), after a
   warm-up: a station's worklist for today (the everyday pull), the whole of today, a patient
   name wildcard, one accession.
4. HL7 ORM^O01 NW over MLLP, then C-FIND by its accession on an open association until it
   answers: time from the first byte of the ORM to the item received.
5. Prints a Markdown table (and writes it to ``--out``).

Issue 4 target: MWL C-FIND p95 ≤ 100 ms at 10k scheduled steps; ORM → MWL ≤ 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import ModalityWorklistInformationFind as MWL
from sqlalchemy import Connection

from mekong.shared.db.index import Index
from mekong.shared.dimse.tuning import tune_pynetdicom
from mekong.shared.ris import orders
from mekong.shared.ris.model import OrderData, OrderRequest, PatientData, ProcedureData, StepData
from tests.nodeproc import AE_TITLE, NodeProcess
from tools.bench.hl7 import ms, percentile, revision
from tools.bench.servers import FIND_AE, Orthanc
from tools.hl7send import MllpClient, ack_fields, orm

FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng")
GIVEN = ("Thị Hồng Nhung", "Văn Đức", "Thị Ngọc Ánh", "Quốc Bảo", "Minh Khôi", "Thị Lan")
MODALITIES = ("CR", "CT", "MR", "US", "DX")
STATIONS = tuple(f"{m}{n:02d}" for m in MODALITIES for n in range(1, 5))  # 20 stations
DAYS = 30


@dataclass(frozen=True)
class Step:
    accession: str
    patient_id: str
    name: str
    station: str
    modality: str
    date: str
    time: str


def schedule(count: int, today: datetime.date) -> list[Step]:
    """``count`` steps spread over DAYS days, the stations and 07:00-17:00."""
    steps = []
    for n in range(count):
        station = STATIONS[n % len(STATIONS)]
        day = today + datetime.timedelta(days=(n // len(STATIONS)) % DAYS)
        minutes = 7 * 60 + (n * 7) % 600
        name = f"{FAMILY[n % len(FAMILY)]}^{GIVEN[(n // 7) % len(GIVEN)]}"
        start = f"{minutes // 60:02d}{minutes % 60:02d}00"
        patient = f"BN{n % 2000:05d}"
        date = day.strftime("%Y%m%d")
        steps.append(Step(f"B{n:07d}", patient, name, station, station[:2], date, start))
    return steps


def request(step: Step) -> OrderRequest:
    return OrderRequest(
        patient=PatientData(step.patient_id, "BVCR", step.name, "19800115", "F"),
        order=OrderData(accession=step.accession),
        procedure=ProcedureData(service_code="XQ001", description="Chụp X quang ngực thẳng"),
        steps=[
            StepData(
                modality=step.modality,
                station_ae=step.station,
                start_date=step.date,
                start_time=step.time,
            )
        ],  # fmt: skip
        source="BENCH",
    )


async def fill_mekong(data_dir: Path, steps: list[Step]) -> float:
    """Create the orders through the domain; returns the seconds it took."""
    data_dir.mkdir(parents=True)
    index = await Index.open(data_dir / "index.db")
    started = time.perf_counter()
    try:
        for start in range(0, len(steps), 500):
            batch = steps[start : start + 500]

            def work(conn: Connection, batch: list[Step] = batch) -> None:
                for step in batch:
                    orders.create_order(conn, request(step), [])

            index.transaction_blocking(work)
    finally:
        await index.close()
    return time.perf_counter() - started


def fill_orthanc(folder: Path, steps: list[Step]) -> None:
    """The same items as Orthanc worklist files (one DICOM file per step)."""
    folder.mkdir(parents=True)
    for step in steps:
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName, ds.PatientID = step.name, step.patient_id
        ds.PatientBirthDate, ds.PatientSex = "19800115", "F"
        ds.AccessionNumber, ds.RequestedProcedureID = step.accession, step.accession
        ds.RequestedProcedureDescription = "Chụp X quang ngực thẳng"
        ds.StudyInstanceUID = generate_uid()
        item = Dataset()
        item.ScheduledStationAETitle, item.Modality = step.station, step.modality
        item.ScheduledProcedureStepStartDate = step.date
        item.ScheduledProcedureStepStartTime = step.time
        item.ScheduledProcedureStepID = step.accession
        item.ScheduledProcedureStepStatus = "SCHEDULED"
        ds.ScheduledProcedureStepSequence = [item]
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MWL
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(folder / f"{step.accession}.wl", enforce_file_format=True)


WORKLIST_PLUGIN = "/usr/share/orthanc/plugins/libModalityWorklists.so"


def orthanc_worklist(root: Path, worklists: Path) -> Orthanc:
    """Orthanc with its ModalityWorklists plugin serving the ``.wl`` files in ``worklists``."""
    settings = {"Worklists": {"Enable": True, "Database": str(worklists)}}
    return Orthanc(root, plugins=[WORKLIST_PLUGIN], settings=settings)


# --- queries -----------------------------------------------------------------------------------


def identifier(step_keys: dict[str, str], **top: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for key in ("PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID",
                "RequestedProcedureDescription"):  # fmt: skip
        setattr(ds, key, top.get(key, ""))
    item = Dataset()
    for key in ("ScheduledStationAETitle", "Modality", "ScheduledProcedureStepStartDate",
                "ScheduledProcedureStepStartTime", "ScheduledProcedureStepID"):  # fmt: skip
        setattr(item, key, step_keys.get(key, ""))
    ds.ScheduledProcedureStepSequence = [item]
    return ds


def query_kinds(today: str, steps: list[Step]) -> dict[str, Dataset]:
    station = STATIONS[0]
    probe = steps[len(steps) // 2]
    return {
        f"station {station}, today, modality CR (the modality's pull)": identifier(
            {"ScheduledStationAETitle": station, "Modality": "CR",
             "ScheduledProcedureStepStartDate": today}),
        "today, every station": identifier({"ScheduledProcedureStepStartDate": today}),
        "PatientName=nguyễn^thị*, today": identifier(
            {"ScheduledProcedureStepStartDate": today}, PatientName="nguyễn^thị*"),
        "one AccessionNumber": identifier({}, AccessionNumber=probe.accession),
    }  # fmt: skip


def scu() -> AE:
    tune_pynetdicom()  # TCP_NODELAY and short reactor polls on the client side too
    ae = AE(ae_title=FIND_AE)
    ae.add_requested_context(MWL)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
    return ae


def find(assoc: Association, query: Dataset) -> int:
    matches = 0
    for status, _ in assoc.send_c_find(query, MWL):
        if status is None or status.Status not in (0xFF00, 0xFF01, 0x0000):
            raise RuntimeError(f"C-FIND failed: {status}")
        matches += status.Status in (0xFF00, 0xFF01)
    return matches


def one_query(ae: AE, port: int, called: str, query: Dataset) -> tuple[float, int]:
    """Associate, C-FIND, release (as a modality does): (seconds, matches)."""
    started = time.perf_counter()
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        raise RuntimeError("association rejected")
    try:
        matches = find(assoc, query)
    finally:
        assoc.release()
    return time.perf_counter() - started, matches


def measure(port: int, called: str, query: Dataset, count: int) -> tuple[list[float], int]:
    ae = scu()
    for _ in range(3):
        one_query(ae, port, called, query)  # warm-up
    times, matches = [], 0
    for _ in range(count):
        elapsed, matches = one_query(ae, port, called, query)
        times.append(elapsed)
    return times, matches


def orm_to_worklist(node: NodeProcess, samples: int, today: str) -> tuple[list[float], int]:
    """Seconds from sending an ORM to its item answered by C-FIND; C-FINDs needed beyond one."""
    ae = scu()
    assoc = ae.associate("127.0.0.1", node.dicom_port, ae_title=AE_TITLE)
    out, retries = [], 0
    try:
        with MllpClient("127.0.0.1", node.hl7_port) as client:
            for n in range(samples):
                accession = f"H{n:07d}"
                message = orm(f"MWL-{n}", accession, modality="CR", station="CR01",
                              start=f"{today}120000").encode()  # fmt: skip
                started = time.perf_counter()
                if ack_fields(client.send(message))["code"] != "AA":
                    raise RuntimeError(f"ORM {accession} not accepted")
                while not find(assoc, identifier({}, AccessionNumber=accession)):
                    retries += 1
                out.append(time.perf_counter() - started)
    finally:
        assoc.release()
    return out, retries


# --- report ------------------------------------------------------------------------------------


def row(
    label: str, mekong: tuple[list[float], int], orthanc: tuple[list[float], int] | None
) -> str:
    (times, matches) = mekong
    cells = f"{matches} | {ms(statistics.median(times))} / **{ms(percentile(times, 95))}**"
    if orthanc is None:
        return f"| {label} | {cells} | — | — |"
    o_times, o_matches = orthanc
    ratio = percentile(o_times, 95) / percentile(times, 95)
    return (f"| {label} | {cells} | {o_matches} | {ms(statistics.median(o_times))} / "
            f"{ms(percentile(o_times, 95))} | {ratio:.1f}× |")  # fmt: skip


def run(args: argparse.Namespace, tmp: Path) -> list[str]:
    today_date = datetime.date.today()
    today = today_date.strftime("%Y%m%d")
    steps = schedule(args.steps, today_date)
    fill_seconds = asyncio.run(fill_mekong(tmp / "data", steps))
    config = tmp / "node.toml"
    config.write_text(f"[dicom]\nworkers = {args.workers}\n")
    node = NodeProcess(tmp / "data", extra_args=["--config", str(config)]).start(timeout=60)
    orthanc = None
    if args.orthanc:
        fill_orthanc(tmp / "worklists", steps)
        orthanc = orthanc_worklist(tmp / "orthanc", tmp / "worklists").start()
    results: list[str] = []
    try:
        for label, query in query_kinds(today, steps).items():
            mine = measure(node.dicom_port, AE_TITLE, query, args.queries)
            theirs = measure(orthanc.port, orthanc.aet, query, args.queries) if orthanc else None
            results.append(row(label, mine, theirs))
        visible, retries = orm_to_worklist(node, args.hl7_samples, today)
    finally:
        node.stop()
        if orthanc:
            orthanc.stop()
    return report(args, fill_seconds, results, visible, retries)


def report(
    args: argparse.Namespace,
    fill_seconds: float,
    results: list[str],
    visible: list[float],
    retries: int,
) -> list[str]:
    return [
        f"MWL benchmark, {datetime.date.today()}, revision {revision()}, {platform.node()}, "
        f"Python {platform.python_version()}, {args.steps} scheduled steps, "
        f"{args.queries} queries per kind, {args.workers} DICOM process(es)",
        "",
        "| query (associate + C-FIND + release) | Mekong matches | Mekong median / p95 (ms) "
        "| Orthanc matches | Orthanc median / p95 (ms) | Orthanc p95 / Mekong p95 |",
        "|---|---|---|---|---|---|",
        *results,
        "",
        "| measure | value |",
        "|---|---|",
        f"| HL7 ORM^O01 NW → item answered by MWL C-FIND, median / p95 / max (ms), "
        f"{len(visible)} orders | {ms(statistics.median(visible))} / "
        f"**{ms(percentile(visible, 95))}** / {ms(max(visible))} |",
        f"| C-FINDs that did not find the item yet (after the ACK) | {retries} |",
        f"| making {args.steps} orders through the RIS domain | {fill_seconds:.1f} s |",
        f"| load average at the end (1 min), CPUs | {os.getloadavg()[0]:.2f}, {os.cpu_count()} |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools.bench.mwl", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--hl7-samples", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-orthanc", dest="orthanc", action="store_false")
    parser.add_argument("--out", type=Path, default=Path("tools/bench/results/mwl-latest.md"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mekong-bench-mwl-") as tmp:
        lines = run(args, Path(tmp))
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
