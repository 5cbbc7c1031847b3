"""Part 10 (DICOM file) framing: find where the dataset starts and its transfer syntax."""

from __future__ import annotations

import io

from pydicom.filereader import _read_file_meta_info, read_preamble

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
