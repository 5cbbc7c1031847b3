"""MPPS attribute lists → RIS performed steps (PS3.4 F.7.2, PS3.3 C.4.13–C.4.16).

N-CREATE must carry the Type 1 attributes Mekong relies on (status, Scheduled Step Attributes
Sequence, start date and time, modality): absent → 0x0120, empty → 0x0121. Dates, times and
the status are checked: a bad value → 0x0106. An N-SET's Modification List is applied over
the stored attributes, except the attributes PS3.4 Table F.7.2-1 does not let N-SET change
(patient, scheduled step references, PPS ID, station, start, modality), which keep their
N-CREATE values.
"""

from __future__ import annotations

import datetime as dt
import re

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from mekong.shared.ris.mpps import PerformedSeries, PerformedStep, StepReference
from mekong.shared.ris.status import Status

INVALID_ATTRIBUTE_VALUE = 0x0106
MISSING_ATTRIBUTE = 0x0120
MISSING_ATTRIBUTE_VALUE = 0x0121

PPS_STATUS = {
    "IN PROGRESS": Status.IN_PROGRESS,
    "COMPLETED": Status.COMPLETED,
    "DISCONTINUED": Status.DISCONTINUED,
}
CREATE_REQUIRED = (
    "PerformedProcedureStepStatus",
    "ScheduledStepAttributesSequence",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "Modality",
)
NOT_SETTABLE = frozenset({
    "SpecificCharacterSet", "ScheduledStepAttributesSequence", "PatientName", "PatientID",
    "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "ReferencedPatientSequence",
    "PerformedProcedureStepID", "PerformedStationAETitle", "PerformedStationName",
    "PerformedLocation", "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
    "Modality", "StudyID", "SOPClassUID", "SOPInstanceUID",
})  # fmt: skip
_DATE = re.compile(r"^\d{8}$")
_TIME = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")


class MppsAttributeError(ValueError):
    """An attribute list Mekong cannot accept; ``status`` is the DIMSE status to answer."""

    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment


def check_create(ds: Dataset) -> None:
    for keyword in CREATE_REQUIRED:
        if keyword not in ds:
            raise MppsAttributeError(MISSING_ATTRIBUTE, f"{keyword} is missing")
        value = ds[keyword].value
        if value is None or value == "" or (keyword.endswith("Sequence") and not len(value)):
            raise MppsAttributeError(MISSING_ATTRIBUTE_VALUE, f"{keyword} is empty")


def performed_step(ds: Dataset, sop_uid: str, calling_ae: str) -> PerformedStep:
    return PerformedStep(
        sop_uid=sop_uid,
        status=_status(ds),
        pps_id=_text(ds, "PerformedProcedureStepID"),
        station_ae=_text(ds, "PerformedStationAETitle"),
        calling_ae=calling_ae,
        modality=_text(ds, "Modality"),
        start_date=_date(ds, "PerformedProcedureStepStartDate"),
        start_time=_time(ds, "PerformedProcedureStepStartTime"),
        end_date=_date(ds, "PerformedProcedureStepEndDate"),
        end_time=_time(ds, "PerformedProcedureStepEndTime"),
        description=_text(ds, "PerformedProcedureStepDescription"),
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        references=tuple(
            _reference(item) for item in _items(ds, "ScheduledStepAttributesSequence")
        ),
        series=tuple(_series(item) for item in _items(ds, "PerformedSeriesSequence")),
        attributes=ds.to_json(),
    )


def merged(stored_json: str, modifications: Dataset) -> Dataset:
    """The stored attributes with an N-SET's modifications applied."""
    ds = Dataset.from_json(stored_json)
    for element in modifications:
        if element.keyword not in NOT_SETTABLE:
            ds[element.tag] = element
    return ds


def _status(ds: Dataset) -> Status:
    value = _text(ds, "PerformedProcedureStepStatus").upper()
    if value not in PPS_STATUS:
        raise MppsAttributeError(
            INVALID_ATTRIBUTE_VALUE,
            f"PerformedProcedureStepStatus {value!r}: IN PROGRESS, COMPLETED or DISCONTINUED",
        )
    return PPS_STATUS[value]


def _reference(item: Dataset) -> StepReference:
    return StepReference(
        study_uid=_text(item, "StudyInstanceUID"),
        accession=_text(item, "AccessionNumber"),
        procedure_id=_text(item, "RequestedProcedureID"),
        sps_id=_text(item, "ScheduledProcedureStepID"),
    )


def _series(item: Dataset) -> PerformedSeries:
    images = len(_items(item, "ReferencedImageSequence"))
    images += len(_items(item, "ReferencedNonImageCompositeSOPInstanceSequence"))
    return PerformedSeries(
        series_uid=_text(item, "SeriesInstanceUID"),
        description=_text(item, "SeriesDescription"),
        protocol=_text(item, "ProtocolName"),
        retrieve_ae=_text(item, "RetrieveAETitle"),
        images=images,
    )


def _items(ds: Dataset, keyword: str) -> list[Dataset]:
    if keyword not in ds:
        return []
    value = ds[keyword].value
    if ds[keyword].VR != "SQ":
        raise MppsAttributeError(INVALID_ATTRIBUTE_VALUE, f"{keyword} must be a sequence")
    return list(value or [])


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def _date(ds: Dataset, keyword: str) -> str:
    value = _text(ds, keyword)
    try:
        if value:
            if not _DATE.match(value):
                raise ValueError(value)
            dt.datetime.strptime(value, "%Y%m%d")
    except ValueError:
        raise MppsAttributeError(
            INVALID_ATTRIBUTE_VALUE, f"{keyword} {value!r} is not a date YYYYMMDD"
        ) from None
    return value


def _time(ds: Dataset, keyword: str) -> str:
    value = _text(ds, keyword)
    if value and not _TIME.match(value):
        raise MppsAttributeError(
            INVALID_ATTRIBUTE_VALUE, f"{keyword} {value!r} is not a time HHMMSS[.FFFFFF]"
        )
    return value
