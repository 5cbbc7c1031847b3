"""Give a peer an instance in a transfer syntax it accepted, decoding only when it must."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom import uid
from pydicom.dataset import Dataset

from mekong.shared.dicom.transfer_syntaxes import NATIVE, VIDEO


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
    elif stored == uid.ExplicitVRBigEndian:
        _to_little_endian(ds)
    ds.file_meta.TransferSyntaxUID = target
    ds.set_original_encoding(target == uid.ImplicitVRLittleEndian, True, ds.original_character_set)
    return ds


def _to_little_endian(ds: Dataset) -> None:
    """Decode every element (raw big-endian values) and re-store pixels little-endian."""
    for _ in ds.iterall():
        pass
    if "PixelData" in ds:
        pixels = ds.pixel_array  # pydicom byte-swaps into the machine's order
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
