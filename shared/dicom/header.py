"""Read the attributes the index keeps from an instance's header (pixel data never decoded)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError


class InvalidInstance(ValueError):
    """The instance cannot be archived; the message says why, for the sender."""


@dataclass(frozen=True)
class InstanceRecord:
    sop_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax: str
    patient_id: str = ""
    issuer: str = ""
    patient_name: str = ""
    birth_date: str = ""
    sex: str = ""
    study_date: str = ""
    study_time: str = ""
    accession: str = ""
    study_id: str = ""
    referring_physician: str = ""
    study_description: str = ""
    modality: str = ""
    series_number: str = ""
    series_description: str = ""
    body_part: str = ""
    series_date: str = ""
    series_time: str = ""
    instance_number: str = ""
    num_frames: int = 1
    rows: int = 0
    columns: int = 0
    charset: str = ""


_REQUIRED = (
    ("SOPInstanceUID", "(0008,0018)"),
    ("SOPClassUID", "(0008,0016)"),
    ("StudyInstanceUID", "(0020,000D)"),
    ("SeriesInstanceUID", "(0020,000E)"),
)

_TEXT_FIELDS = {
    "patient_id": "PatientID",
    "issuer": "IssuerOfPatientID",
    "patient_name": "PatientName",
    "birth_date": "PatientBirthDate",
    "sex": "PatientSex",
    "study_date": "StudyDate",
    "study_time": "StudyTime",
    "accession": "AccessionNumber",
    "study_id": "StudyID",
    "referring_physician": "ReferringPhysicianName",
    "study_description": "StudyDescription",
    "modality": "Modality",
    "series_number": "SeriesNumber",
    "series_description": "SeriesDescription",
    "body_part": "BodyPartExamined",
    "series_date": "SeriesDate",
    "series_time": "SeriesTime",
    "instance_number": "InstanceNumber",
}


def parse_header(part10: bytes) -> Dataset:
    """Parse a Part 10 byte string up to (not including) its pixel data."""
    try:
        return pydicom.dcmread(io.BytesIO(part10), stop_before_pixels=True)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInstance(f"dataset cannot be parsed: {exc}") from None


def record_from(ds: Dataset) -> InstanceRecord:
    """Build the index record; raises InvalidInstance when a key attribute is missing."""
    try:
        for keyword, tag in _REQUIRED:
            if not str(ds.get(keyword, "") or "").strip():
                raise InvalidInstance(f"missing {keyword} {tag}")
        texts = {field: _text(ds, keyword) for field, keyword in _TEXT_FIELDS.items()}
        return InstanceRecord(
            sop_uid=str(ds.SOPInstanceUID),
            sop_class_uid=str(ds.SOPClassUID),
            study_uid=str(ds.StudyInstanceUID),
            series_uid=str(ds.SeriesInstanceUID),
            transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
            num_frames=_int(ds, "NumberOfFrames", 1),
            rows=_int(ds, "Rows", 0),
            columns=_int(ds, "Columns", 0),
            charset="\\".join(_charsets(ds)),
            **texts,
        )
    except InvalidInstance:
        raise
    except Exception as exc:  # a malformed value anywhere in the header
        raise InvalidInstance(f"header attribute cannot be read: {exc}") from None


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    return str(value).strip()


def _int(ds: Dataset, keyword: str, default: int) -> int:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _charsets(ds: Dataset) -> list[str]:
    value = ds.get("SpecificCharacterSet")
    if value is None:
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]
