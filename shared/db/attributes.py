"""Which DICOM attributes the index can match and return, and where each one lives."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from sqlalchemy import ColumnElement, func, select

from mekong.shared.db import schema as t


class Level(IntEnum):
    PATIENT = 0
    STUDY = 1
    SERIES = 2
    IMAGE = 3

    @classmethod
    def parse(cls, value: str) -> Level:
        return cls[value.strip().upper()]


@dataclass(frozen=True)
class Attr:
    level: Level
    vr: str
    column: ColumnElement  # what is returned
    match_column: ColumnElement | None = None  # what is compared, when it differs (PN forms)


def _count(table, fk, parent) -> ColumnElement:  # type: ignore[no-untyped-def]
    return select(func.count()).where(fk == parent).correlate(parent.table).scalar_subquery()


_PATIENT_STUDIES = _count(t.study, t.study.c.patient_fk, t.patient.c.id)
_PATIENT_SERIES = (
    select(func.coalesce(func.sum(t.study.c.num_series), 0))
    .where(t.study.c.patient_fk == t.patient.c.id)
    .correlate(t.patient)
    .scalar_subquery()
)
_PATIENT_INSTANCES = (
    select(func.coalesce(func.sum(t.study.c.num_instances), 0))
    .where(t.study.c.patient_fk == t.patient.c.id)
    .correlate(t.patient)
    .scalar_subquery()
)

P, ST, SE, IM = Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE

ATTRIBUTES: dict[str, Attr] = {
    "PatientName": Attr(P, "PN", t.patient.c.name, t.patient.c.name_ci),
    "PatientID": Attr(P, "LO", t.patient.c.patient_id),
    "IssuerOfPatientID": Attr(P, "LO", t.patient.c.issuer),
    "PatientBirthDate": Attr(P, "DA", t.patient.c.birth_date),
    "PatientSex": Attr(P, "CS", t.patient.c.sex),
    "NumberOfPatientRelatedStudies": Attr(P, "IS", _PATIENT_STUDIES),
    "NumberOfPatientRelatedSeries": Attr(P, "IS", _PATIENT_SERIES),
    "NumberOfPatientRelatedInstances": Attr(P, "IS", _PATIENT_INSTANCES),
    "StudyInstanceUID": Attr(ST, "UI", t.study.c.study_uid),
    "StudyDate": Attr(ST, "DA", t.study.c.study_date),
    "StudyTime": Attr(ST, "TM", t.study.c.study_time),
    "AccessionNumber": Attr(ST, "SH", t.study.c.accession),
    "StudyID": Attr(ST, "SH", t.study.c.study_id),
    "ReferringPhysicianName": Attr(ST, "PN", t.study.c.referring_physician),
    "StudyDescription": Attr(ST, "LO", t.study.c.description),
    "ModalitiesInStudy": Attr(ST, "CS", t.study.c.modalities),
    "NumberOfStudyRelatedSeries": Attr(ST, "IS", t.study.c.num_series),
    "NumberOfStudyRelatedInstances": Attr(ST, "IS", t.study.c.num_instances),
    "SeriesInstanceUID": Attr(SE, "UI", t.series.c.series_uid),
    "Modality": Attr(SE, "CS", t.series.c.modality),
    "SeriesNumber": Attr(SE, "IS", t.series.c.series_number),
    "SeriesDescription": Attr(SE, "LO", t.series.c.description),
    "BodyPartExamined": Attr(SE, "CS", t.series.c.body_part),
    "SeriesDate": Attr(SE, "DA", t.series.c.series_date),
    "SeriesTime": Attr(SE, "TM", t.series.c.series_time),
    "NumberOfSeriesRelatedInstances": Attr(SE, "IS", t.series.c.num_instances),
    "SOPInstanceUID": Attr(IM, "UI", t.instance.c.sop_uid),
    "SOPClassUID": Attr(IM, "UI", t.instance.c.sop_class_uid),
    "InstanceNumber": Attr(IM, "IS", t.instance.c.instance_number),
    "NumberOfFrames": Attr(IM, "IS", t.instance.c.num_frames),
    "Rows": Attr(IM, "US", t.instance.c.rows),
    "Columns": Attr(IM, "US", t.instance.c.columns),
    "AvailableTransferSyntaxUID": Attr(IM, "UI", t.instance.c.transfer_syntax),
}

UNIQUE_KEYS = {
    Level.PATIENT: "PatientID",
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.IMAGE: "SOPInstanceUID",
}


def representative_digest(level: Level) -> ColumnElement | None:
    """The blob of one instance of each result row, whose header answers keys the index does
    not hold (sequences). None at patient level."""
    first = select(t.instance.c.digest).order_by(t.instance.c.id).limit(1)
    if level == Level.IMAGE:
        return t.instance.c.digest
    if level == Level.SERIES:
        return first.where(t.instance.c.series_fk == t.series.c.id).scalar_subquery()
    if level == Level.STUDY:
        in_study = first.join(t.series, t.series.c.id == t.instance.c.series_fk)
        return in_study.where(t.series.c.study_fk == t.study.c.id).scalar_subquery()
    return None
