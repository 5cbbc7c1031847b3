"""Give a peer an instance in a transfer syntax it accepted, decoding only when it must."""

from __future__ import annotations

from pathlib import Path

import pydicom
from mekong.shared.dicom.transfer_syntaxes import NATIVE, VIDEO
from pydicom import uid
from pydicom.dataset import Dataset


class CannotTranscode(ValueError):
    """No accepted transfer syntax can carry this instance."""


def dataset_for(path: Path, accepted: list[str]) -> Dataset:
    """Read ``path``; if its syntax is not in ``accepted``, decode to a native one that is."""
    ds = pydicom.dcmread(path)
    stored = str(ds.file_meta.TransferSyntaxUID)
    if stored in accepted:
        return ds
    target = next((syntax for syntax in accepted if syntax in NATIVE), None)
    if target is None or stored in VIDEO:
        raise CannotTranscode(f"stored as {stored}; peer accepts only {', '.join(accepted)}")
    if uid.UID(stored).is_compressed:
        ds.decompress()  # pixels to native, TransferSyntaxUID → Explicit VR Little Endian
    ds.file_meta.TransferSyntaxUID = target
    return ds
