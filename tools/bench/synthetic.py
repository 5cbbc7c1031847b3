"""Synthetic data for the DIMSE benchmark: two CT sets and many small studies."""

from __future__ import annotations

import datetime
import io
import math
import os
import random
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmwrite
from pynetdicom.sop_class import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalMammographyXRayImageStorageForPresentation,
    DigitalXRayImageStorageForPresentation,
    MRImageStorage,
    UltrasoundImageStorage,
)

from tools.gendata import _ct_base, _ct_slice, ct_series, uid

PARTS = 4  # folders, series and parallel associations
STUDY_SIZE = 50  # small instances per study (two series)
UID_ROOT = "1.2.826.0.1.3680043.8.498"  # pydicom's root, as tools.gendata uses


class BenchError(RuntimeError):
    pass


FAMILIES = {  # rough frequencies of Vietnamese family names
    "NGUYEN": 31, "TRAN": 11, "LE": 9.5, "PHAM": 7, "HOANG": 5, "HUYNH": 5, "PHAN": 4.5,
    "VU": 4, "VO": 4, "DANG": 2, "BUI": 2, "DO": 1.4, "HO": 1.3, "NGO": 1.3, "DUONG": 1,
    "LY": 0.5,
}  # fmt: skip
MIDDLE = {"M": ["VAN", "HUU", "DUC", "MINH", "QUANG", "CONG", "THANH"],
          "F": ["THI", "NGOC", "THU", "KIM", "MAI", "HONG", "THANH"]}  # fmt: skip
GIVEN = {
    "M": ["AN", "BINH", "CUONG", "DUNG", "DAT", "HAI", "HIEU", "HOANG", "HUNG", "KHANG", "KHOA",
          "LONG", "MINH", "NAM", "PHONG", "PHUC", "QUAN", "SON", "TAI", "THANG", "TIEN", "TRUNG",
          "TUAN", "VIET", "VINH"],
    "F": ["ANH", "CHI", "DIEP", "DUNG", "GIANG", "HA", "HANH", "HOA", "HUONG", "HUYEN", "LAN",
          "LIEN", "LINH", "LOAN", "MAI", "MY", "NGA", "NHUNG", "OANH", "PHUONG", "QUYEN", "THAO",
          "TRANG", "UYEN", "VY", "YEN"],
}  # fmt: skip
MODALITIES = {  # modality: (weight, SOP class, body part, study description)
    "CT": (30, CTImageStorage, "HEAD", "CT SO NAO"),
    "MR": (20, MRImageStorage, "SPINE", "MRI COT SONG"),
    "CR": (20, ComputedRadiographyImageStorage, "CHEST", "XQ NGUC THANG"),
    "DX": (10, DigitalXRayImageStorageForPresentation, "KNEE", "XQ GOI"),
    "US": (15, UltrasoundImageStorage, "ABDOMEN", "SIEU AM BUNG"),
    "MG": (5, DigitalMammographyXRayImageStorageForPresentation, "BREAST", "CHUP NHU"),
}
FIRST_STUDY_DAY = datetime.date(2023, 1, 1)
STUDY_DAYS = 730


@dataclass(frozen=True)
class Patient:
    patient_id: str
    family: str
    middle: str
    given: str
    sex: str
    birth_date: str

    @property
    def name(self) -> str:
        return f"{self.family}^{self.middle} {self.given}"


@dataclass(frozen=True)
class Study:
    index: int
    patient: Patient
    modality: str
    date: str
    time: str
    series_sizes: tuple[int, ...]
    uid_root: str = UID_ROOT

    @property
    def study_uid(self) -> str:
        return f"{self.uid_root}.{100000 + self.index}"


def plan_small_studies(instances: int, seed: int, study_size: int = STUDY_SIZE) -> list[Study]:
    """~instances/study_size studies of 2 series, ~1.25 studies per patient, dates over two
    years."""
    rng = random.Random(seed)
    n_studies = max(1, math.ceil(instances / study_size))
    sizes = [study_size] * (instances // study_size)
    if instances % study_size:
        sizes.append(instances % study_size)
    patients = []
    for i in range(max(1, round(n_studies * 0.8))):
        sex = rng.choice("MF")
        family = rng.choices(list(FAMILIES), weights=list(FAMILIES.values()))[0]
        birth = FIRST_STUDY_DAY - datetime.timedelta(days=rng.randrange(365, 90 * 365))
        patients.append(
            Patient(
                f"VN{1_000_000 + i}",
                family,
                rng.choice(MIDDLE[sex]),
                rng.choice(GIVEN[sex]),
                sex,
                birth.strftime("%Y%m%d"),
            )
        )
    modalities = list(MODALITIES)
    weights = [MODALITIES[m][0] for m in modalities]
    studies = []
    root = f"{UID_ROOT}.{9000 + seed % 1000}"
    for index, size in enumerate(sizes):
        patient = patients[index] if index < len(patients) else rng.choice(patients)
        day = FIRST_STUDY_DAY + datetime.timedelta(days=rng.randrange(STUDY_DAYS))
        first = (size + 1) // 2
        studies.append(
            Study(
                index,
                patient,
                rng.choices(modalities, weights=weights)[0],
                day.strftime("%Y%m%d"),
                f"{rng.randrange(7, 18):02d}{rng.randrange(60):02d}00",
                (first, size - first) if size > 1 else (size,),
                uid_root=root,
            )
        )
    return studies


_INSTANCE_NUMBER = b"\x20\x00\x13\x00IS\x04\x00"  # (0020,0013) IS, 4 bytes, Explicit VR LE


def _small_template(study: Study, series_number: int, seed: int) -> tuple[bytes, str, int]:
    """A 16x16 instance of ``study``'s series as bytes, with a placeholder SOP Instance UID
    (same length as the real ones) and Instance Number "9999" at a known offset."""
    modality = study.modality
    _, sop_class, body_part, description = MODALITIES[modality]
    patient = study.patient
    ds = _ct_base(16, 16, patient.name, patient.patient_id, study.study_uid, seed, series_number)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.Modality = modality
    ds.BodyPartExamined = body_part
    ds.SeriesInstanceUID = f"{study.study_uid}.{series_number}"
    ds.PatientSex = patient.sex
    ds.PatientBirthDate = patient.birth_date
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study.date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = study.time
    ds.AccessionNumber = f"BV{2_000_000 + study.index}"
    ds.StudyID = str(study.index + 1)
    ds.StudyDescription = description
    ds.SeriesDescription = f"{description} {series_number}"
    ds.InstitutionName = "BENH VIEN DA KHOA TINH"
    _ct_slice(ds, 1, seed)
    ds.InstanceNumber = "9999"
    placeholder = f"{ds.SeriesInstanceUID}.10000"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = placeholder
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    data = buffer.getvalue()
    if data.count(placeholder.encode()) != 2 or data.count(_INSTANCE_NUMBER) != 1:
        raise BenchError("unexpected template layout")
    return data, placeholder, data.index(_INSTANCE_NUMBER) + len(_INSTANCE_NUMBER)


def write_small_part(folder: Path, studies: list[Study], seed: int) -> int:
    """Write every instance of ``studies`` under ``folder``; returns the number written."""
    written = 0
    for study in studies:
        study_dir = folder / f"study{study.index:06d}"
        study_dir.mkdir(parents=True, exist_ok=True)
        for series_number, size in enumerate(study.series_sizes, 1):
            template, placeholder, at = _small_template(study, series_number, seed)
            series_uid = placeholder.rsplit(".", 1)[0]
            for n in range(1, size + 1):
                data = bytearray(
                    template.replace(placeholder.encode(), f"{series_uid}.{10000 + n}".encode())
                )
                data[at : at + 4] = f"{n:<4d}".encode()
                (study_dir / f"{series_number}_{n:04d}.dcm").write_bytes(data)
                written += 1
    return written


def write_ct_series(folder: Path, count: int, seed: int, series_number: int) -> int:
    ct_series(
        folder,
        count,
        patient_name=f"BENCH^CT {seed}",
        patient_id=f"BENCHCT{seed}",
        study_uid=uid(seed, "bench-ct-study"),
        seed=seed,
        series_number=series_number,
    )
    return count


def generate(root: Path, instances: int, find_instances: int, seed: int, profile: bool):
    """Write all data sets in parallel; returns (CT set folders by name, small folders, studies)."""
    ct_sets = {"ct1": seed + 1, "ct2": seed + 2, **({"ctprof": seed + 3} if profile else {})}
    studies = plan_small_studies(find_instances, seed)
    folders: dict[str, list[Path]] = {}
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        jobs = []
        for name, ct_seed in ct_sets.items():
            count = instances if name != "ctprof" else max(1000, 2 * instances)
            folders[name] = [root / name / f"series{k + 1}" for k in range(PARTS)]
            for k, folder in enumerate(folders[name]):
                share = count // PARTS + (1 if k < count % PARTS else 0)
                jobs.append(pool.submit(write_ct_series, folder, share, ct_seed, k + 1))
        small = [root / "small" / f"part{k + 1}" for k in range(PARTS)]
        for k, folder in enumerate(small):
            jobs.append(pool.submit(write_small_part, folder, studies[k::PARTS], seed))
        for job in jobs:
            job.result()
    return folders, small, studies


def files_in(folders: Sequence[Path]) -> tuple[int, int]:
    """(number of files, total bytes) under ``folders``."""
    count = size = 0
    for folder in folders:
        for dirpath, _dirs, names in os.walk(folder):
            for name in names:
                count += 1
                size += os.stat(os.path.join(dirpath, name)).st_size
    return count, size
