"""Part 10 (DICOM file) framing: find where the dataset starts and its transfer syntax."""

from __future__ import annotations

import io

from pydicom.dataset import FileMetaDataset
from pydicom.filereader import _read_file_meta_info, read_preamble
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.dsutils import encode_file_meta

from mekong.shared.dicom.header import InvalidInstance


def split_part10(data: bytes) -> tuple[int, str]:
    """Return (offset of the dataset, transfer syntax UID) of a Part 10 byte string."""
    stream = io.BytesIO(data)
    try:
        read_preamble(stream, force=False)
        meta = _read_file_meta_info(stream)
    except Exception as exc:
        raise InvalidInstance(f"not a DICOM Part 10 file: {exc}") from None
    syntax = meta.get("TransferSyntaxUID")
    if not syntax:
        raise InvalidInstance("file meta information has no Transfer Syntax UID (0002,0010)")
    return stream.tell(), str(syntax)


def part10_bytes(sop_class_uid: str, sop_instance_uid: str, syntax: str, dataset: bytes) -> bytes:
    """A Part 10 file around a received data set, with the same File Meta Information that
    pynetdicom writes (so an instance received either way has the same digest)."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = PYNETDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = PYNETDICOM_IMPLEMENTATION_VERSION
    return b"".join((b"\x00" * 128, b"DICM", encode_file_meta(meta), dataset))
