"""What a JPEG file is, read from its markers (no decoding): size, components, subsampling,
process, colour transform. Decides whether it can be wrapped unchanged as JPEG Baseline
(``1.2.840.10008.1.2.4.50``)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

_SOF = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive", 0xC3: "lossless",
        0xC5: "differential", 0xC6: "differential", 0xC7: "differential", 0xC9: "arithmetic",
        0xCA: "arithmetic", 0xCB: "arithmetic", 0xCD: "arithmetic", 0xCE: "arithmetic",
        0xCF: "arithmetic"}  # fmt: skip


class NotJpeg(ValueError):
    """The bytes are not a readable JPEG."""


@dataclass(frozen=True)
class JpegInfo:
    rows: int
    columns: int
    components: int
    bits: int
    process: str  # baseline | extended | progressive | ...
    subsampled: bool  # chroma sampled less than luma
    adobe_transform: int | None  # APP14 Adobe transform flag, None without APP14

    @property
    def wrappable(self) -> bool:
        """Encapsulated unchanged as JPEG Baseline (Process 1): 8-bit Huffman, 1 or 3 channels."""
        return (
            self.process in ("baseline", "extended")
            and self.bits == 8
            and self.components in (1, 3)
        )

    @property
    def photometric(self) -> str:
        if self.components == 1:
            return "MONOCHROME2"
        if self.adobe_transform == 0:  # Adobe: stored as RGB, no colour transform
            return "RGB"
        return "YBR_FULL_422" if self.subsampled else "YBR_FULL"


def jpeg_info(data: bytes) -> JpegInfo:
    """Read the markers up to the first SOF; raises :class:`NotJpeg`."""
    if data[:2] != b"\xff\xd8":
        raise NotJpeg("not a JPEG file (no SOI marker)")
    if b"\xff\xd9" not in data[-16:]:
        raise NotJpeg("the JPEG file is cut off (no EOI marker at its end)")
    pos, adobe = 2, None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise NotJpeg(f"JPEG marker expected at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        segment = data[pos + 4 : pos + 2 + length]
        if marker == 0xEE and segment[:5] == b"Adobe" and len(segment) >= 12:
            adobe = segment[11]
        if marker in _SOF:
            return _frame(segment, _SOF[marker], adobe)
        if marker == 0xDA:
            break
        pos += 2 + length
    raise NotJpeg("no frame header (SOF) in the JPEG file")


def _frame(segment: bytes, process: str, adobe: int | None) -> JpegInfo:
    if len(segment) < 6:
        raise NotJpeg("JPEG frame header too short")
    bits, rows, columns, count = struct.unpack_from(">BHHB", segment)
    if rows == 0 or columns == 0:
        raise NotJpeg("JPEG without a height or width in its frame header")
    factors = [segment[7 + 3 * n] for n in range(count) if 7 + 3 * n < len(segment)]
    subsampled = count > 1 and len(set(factors)) > 1
    return JpegInfo(rows, columns, count, bits, process, subsampled, adobe)
