"""Part 10 (DICOM file) framing: find where the dataset starts and its transfer syntax."""

from __future__ import annotations

import io
import struct

from pydicom.filereader import _read_file_meta_info, read_preamble
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

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
    """A Part 10 file around a received data set, with the same File Meta Information bytes
    that pynetdicom writes (so an instance received either way has the same digest).

    Encoded by hand: going through pydicom cost ~9% of the receive path's CPU.
    """
    elements = b"".join((
        _element(0x0001, b"OB", b"\x00\x01"),
        _element(0x0002, b"UI", _uid(sop_class_uid)),
        _element(0x0003, b"UI", _uid(sop_instance_uid)),
        _element(0x0010, b"UI", _uid(syntax)),
        _element(0x0012, b"UI", _uid(PYNETDICOM_IMPLEMENTATION_UID)),
        _element(0x0013, b"SH", _padded(PYNETDICOM_IMPLEMENTATION_VERSION.encode(), b" ")),
    ))  # fmt: skip
    group_length = _element(0x0000, b"UL", struct.pack("<I", len(elements)))
    return b"".join((b"\x00" * 128, b"DICM", group_length, elements, dataset))


def _element(element: int, vr: bytes, value: bytes) -> bytes:
    if vr == b"OB":
        return struct.pack("<HH2s2xI", 0x0002, element, vr, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def _uid(value: str) -> bytes:
    return _padded(value.encode("ascii"), b"\x00")


def _padded(value: bytes, pad: bytes) -> bytes:
    return value + pad if len(value) % 2 else value
