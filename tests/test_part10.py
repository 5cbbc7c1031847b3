"""The front door's hand-written File Meta Information equals pynetdicom's, byte for byte."""

import pytest
from pydicom.dataset import FileMetaDataset
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.dsutils import encode_file_meta

from mekong.shared.dicom.part10 import part10_bytes, split_part10


@pytest.mark.parametrize(
    ("sop_class", "sop_instance", "syntax"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "1.2.840.10008.1.2.1"),  # even, odd lengths
        ("1.2.840.10008.5.1.4.1.1.77.1.1.1", "1.2.826.0.1.3680043.8.498.1", "1.2.840.10008.1.2"),
        ("1.2.840.10008.5.1.4.1.1.7", "2.25.12345678901234567890", "1.2.840.10008.1.2.4.90"),
    ],
)
def test_meta_matches_pynetdicom(sop_class: str, sop_instance: str, syntax: str) -> None:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = PYNETDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = PYNETDICOM_IMPLEMENTATION_VERSION
    dataset = b"\x08\x00\x16\x00UI\x04\x001.2\x00"  # (0008,0016) UI "1.2"
    expected = b"\x00" * 128 + b"DICM" + encode_file_meta(meta) + dataset
    made = part10_bytes(sop_class, sop_instance, syntax, dataset)
    assert made == expected
    assert split_part10(made) == (len(made) - len(dataset), syntax)
