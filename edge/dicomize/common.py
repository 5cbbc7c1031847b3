"""Attributes every created object shares: patient, study and request attributes from the
order (IHE SWF: Study Instance UID, accession, Request Attributes Sequence), series, equipment
and SOP common. Text is UTF-8 (``ISO_IR 192``), so Vietnamese names stay byte-exact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from io import BytesIO

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset

from mekong.edge.orders import OrderContext
from mekong.shared import __version__
from mekong.shared.dicom import uids

MANUFACTURER = "Mekong"


@dataclass(frozen=True)
class Origin:
    """Where an object comes from: the device and what was done (captured or imported)."""

    device: str  # capture device or watch-folder device name; "upload" for a bare upload
    modality: str
    series_label: str  # e.g. "capture video"; one series per (study, device, label)
    series_number: int
    series_description: str = ""
    conversion_type: str = "WSD"  # SC Equipment: DV digitized video, WSD workstation
    anatomic_region: str = ""  # "code^scheme^meaning"


def base_dataset(ctx: OrderContext, sop_class: str, origin: Origin, syntax: str) -> Dataset:
    """Patient, study, series, equipment, request and SOP common attributes."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uids.new_uid()
    _patient(ds, ctx)
    _study(ds, ctx)
    _series(ds, ctx, origin)
    _equipment(ds, origin)
    ds.RequestAttributesSequence = [_request(ctx)]
    return ds


def _patient(ds: Dataset, ctx: OrderContext) -> None:
    ds.PatientName = ctx.patient_name
    ds.PatientID = ctx.patient_id
    if ctx.issuer:
        ds.IssuerOfPatientID = ctx.issuer
    ds.PatientBirthDate = ctx.birth_date
    ds.PatientSex = ctx.sex


def _study(ds: Dataset, ctx: OrderContext) -> None:
    now = time.localtime()
    ds.StudyInstanceUID = ctx.study_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = time.strftime("%Y%m%d", now)
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = time.strftime("%H%M%S", now)
    ds.InstanceCreationDate, ds.InstanceCreationTime = ds.ContentDate, ds.ContentTime
    ds.AccessionNumber = ctx.accession
    ds.StudyID = ctx.procedure_id[:16]
    ds.ReferringPhysicianName = ctx.referring_physician
    if ctx.procedure_description:
        ds.StudyDescription = ctx.procedure_description[:64]


def _series(ds: Dataset, ctx: OrderContext, origin: Origin) -> None:
    ds.Modality = origin.modality
    ds.SeriesInstanceUID = series_uid(ctx.study_uid, origin)
    ds.SeriesNumber = origin.series_number
    ds.SeriesDescription = (origin.series_description or origin.series_label)[:64]
    ds.InstanceNumber = int(time.time() * 10) % 2_000_000_000  # increasing within a series


def series_uid(study_uid: str, origin: Origin) -> str:
    """The same series for every object of one device and label in a study (also after a
    restart): a UID derived from them."""
    return uids.derived_uid(study_uid, origin.device, origin.series_label)


def _equipment(ds: Dataset, origin: Origin) -> None:
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = "Mekong edge"
    ds.SoftwareVersions = __version__
    ds.StationName = origin.device[:16]


def _request(ctx: OrderContext) -> Dataset:
    item = Dataset()
    item.AccessionNumber = ctx.accession
    item.StudyInstanceUID = ctx.study_uid
    item.RequestedProcedureID = ctx.procedure_id[:16]
    if ctx.procedure_description:
        item.RequestedProcedureDescription = ctx.procedure_description[:64]
    if ctx.sps_id:
        item.ScheduledProcedureStepID = ctx.sps_id[:16]
    if ctx.sps_description:
        item.ScheduledProcedureStepDescription = ctx.sps_description[:64]
    return item


def sc_equipment(ds: Dataset, origin: Origin) -> None:
    """SC Equipment module (Secondary Capture, Encapsulated PDF)."""
    ds.ConversionType = origin.conversion_type


def anatomic_region(ds: Dataset, origin: Origin) -> None:
    """VL Image module: Anatomic Region Sequence, one item coded in SCT (dciodvfy: required
    for the VL and Video Endoscopic classes); the device's configured code or the whole body."""
    code, scheme, meaning = (origin.anatomic_region or "38266002^SCT^Entire body").split("^")
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, scheme, meaning
    ds.AnatomicRegionSequence = [item]


def part10(ds: Dataset) -> bytes:
    """The dataset as a Part 10 file (File Meta Information completed by pydicom)."""
    buffer = BytesIO()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
