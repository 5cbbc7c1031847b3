"""Where each frame of a stored instance lies in its file, so frames are read without decoding.

A stored blob is scanned once (top-level element headers only, through ``mmap``): native pixel
data gives one byte range per frame; encapsulated pixel data gives its fragments, grouped into
frames by the Extended Offset Table, the Basic Offset Table, one fragment per frame, or frame
start markers, in that order. The resulting :class:`PixelLayout` is immutable for a digest.
"""

from __future__ import annotations

import io
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom import uid
from pydicom.dataset import Dataset

from mekong.shared.dicom.part10 import split_part10
from mekong.shared.dicom.transfer_syntaxes import VIDEO

PIXEL_DATA = 0x7FE00010
EXTENDED_OFFSET_TABLE = 0x7FE00001
_ITEM, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}  # fmt: skip
_FRAME_STARTS = (b"\xff\xd8", b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP  ")  # JPEG, J2K, JP2

Range = tuple[int, int]  # (file offset, length)


class NoPixelData(ValueError):
    """The instance has no pixel data, or its layout cannot be read from the file."""


@dataclass(frozen=True)
class Element:
    tag: int
    vr: str
    value_offset: int
    length: int  # _UNDEFINED for encapsulated / undefined-length values


@dataclass(frozen=True)
class PixelLayout:
    transfer_syntax: str
    frames: list[list[Range]] = field(default_factory=list)  # per frame, the byte ranges
    encapsulated: bool = False

    @property
    def count(self) -> int:
        return len(self.frames)

    def whole_value(self) -> list[Range]:
        """Every byte range of the pixel data value in order (e.g. an MP4 spread over fragments)."""
        return [r for frame in self.frames for r in frame]


@dataclass(frozen=True)
class Scan:
    transfer_syntax: str
    elements: dict[int, Element]  # top level, up to and including Pixel Data
    header: bytes  # the file up to the Pixel Data value (all of it when there is none)
    fragments: list[Range]  # encapsulated pixel data: the Basic Offset Table item, then fragments


def scan(path: Path) -> Scan:
    """Read the top-level element headers of a stored Part 10 file."""
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        offset, syntax = split_part10(buf[: min(len(buf), 64 * 1024)])
        if syntax == uid.DeflatedExplicitVRLittleEndian:
            raise NoPixelData("deflated data sets have no fixed frame positions")
        scanner = _Scanner(buf, syntax)
        elements = scanner.elements(offset)
        pixel = elements.get(PIXEL_DATA)
        if pixel is None:
            return Scan(syntax, elements, bytes(buf), [])
        fragments = scanner.fragments(pixel.value_offset) if pixel.length == _UNDEFINED else []
        return Scan(syntax, elements, bytes(buf[: pixel.value_offset]), fragments)


def pixel_layout(path: Path) -> PixelLayout:
    found = scan(path)
    pixel = found.elements.get(PIXEL_DATA)
    if pixel is None:
        raise NoPixelData("the instance has no pixel data")
    ds = _read_header(found.header)
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        raise NoPixelData(f"NumberOfFrames {ds.get('NumberOfFrames')!r} is not a number") from None
    if pixel.length != _UNDEFINED:
        return PixelLayout(found.transfer_syntax, _native_frames(ds, pixel, frames))
    if found.transfer_syntax in VIDEO:  # one stream (MP4 / MPEG-TS), however many pictures
        return PixelLayout(found.transfer_syntax, [found.fragments[1:]], encapsulated=True)
    grouped = _encapsulated_frames(path, found.elements, found.fragments, frames)
    return PixelLayout(found.transfer_syntax, grouped, encapsulated=True)


def read_ranges(path: Path, ranges: list[Range]) -> bytes:
    with open(path, "rb", buffering=0) as file:
        return b"".join(_pread(file.fileno(), offset, length) for offset, length in ranges)


def _pread(fd: int, offset: int, length: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise NoPixelData("the stored file is shorter than its pixel data")
    return data


def _read_header(header: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(header), force=True, stop_before_pixels=True)


def _native_frames(ds: Dataset, pixel: Element, frames: int) -> list[list[Range]]:
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    samples = int(ds.get("SamplesPerPixel") or 1)
    bits = int(ds.get("BitsAllocated") or 8)
    frame_bits = rows * columns * samples * bits
    if ds.get("PhotometricInterpretation") == "YBR_FULL_422":
        frame_bits = frame_bits * 2 // 3  # two chroma samples shared by each pixel pair
    if frame_bits == 0 or frame_bits % 8:
        if frames == 1:
            return [[(pixel.value_offset, pixel.length)]]
        raise NoPixelData("frames are not byte aligned (1-bit multi-frame)")
    size = frame_bits // 8
    if size * frames > pixel.length:
        raise NoPixelData(f"pixel data holds {pixel.length} bytes, {frames} frames need more")
    return [[(pixel.value_offset + i * size, size)] for i in range(frames)]


def _encapsulated_frames(
    path: Path, elements: dict[int, Element], fragments: list[Range], frames: int
) -> list[list[Range]]:
    bot, data = fragments[0], fragments[1:]
    if not data:
        raise NoPixelData("encapsulated pixel data holds no fragments")
    if frames == 1:
        return [data]
    eot = elements.get(EXTENDED_OFFSET_TABLE)
    if eot is not None and eot.length not in (0, _UNDEFINED):
        table = read_ranges(path, [(eot.value_offset, eot.length)])
        offsets = struct.unpack(f"<{eot.length // 8}Q", table)
        return _group_by_offsets(data, list(offsets), frames)
    if bot[1]:
        offsets = struct.unpack(f"<{bot[1] // 4}I", read_ranges(path, [bot]))
        return _group_by_offsets(data, list(offsets), frames)
    if len(data) == frames:
        return [[fragment] for fragment in data]
    return _group_by_markers(path, data, frames)


def _group_by_offsets(data: list[Range], offsets: list[int], frames: int) -> list[list[Range]]:
    """Offsets count from the first byte of the first fragment's item tag."""
    if len(offsets) != frames:
        raise NoPixelData(f"offset table lists {len(offsets)} frames, the header says {frames}")
    origin = data[0][0] - 8
    grouped: list[list[Range]] = [[] for _ in offsets]
    index = -1
    for fragment in data:
        position = fragment[0] - 8 - origin
        while index + 1 < len(offsets) and offsets[index + 1] <= position:
            index += 1
        grouped[max(index, 0)].append(fragment)
    if any(not frame for frame in grouped):
        raise NoPixelData("offset table points between fragments")
    return grouped


def _group_by_markers(path: Path, data: list[Range], frames: int) -> list[list[Range]]:
    grouped: list[list[Range]] = []
    with open(path, "rb", buffering=0) as file:
        for fragment in data:
            start = _pread(file.fileno(), fragment[0], min(fragment[1], 12))
            if not grouped or start.startswith(_FRAME_STARTS):
                grouped.append([])
            grouped[-1].append(fragment)
    if len(grouped) != frames:
        raise NoPixelData(f"found {len(grouped)} frame starts in the fragments, expected {frames}")
    return grouped


class _Scanner:
    """Reads element headers only; values are skipped by their lengths."""

    def __init__(self, buf: mmap.mmap, syntax: str) -> None:
        self.buf = buf
        self.implicit = syntax == uid.ImplicitVRLittleEndian
        endian = ">" if syntax == uid.ExplicitVRBigEndian else "<"
        self.tag_format = struct.Struct(endian + "HH")
        self.u16 = struct.Struct(endian + "H")
        self.u32 = struct.Struct(endian + "I")
        self.item = struct.Struct("<HHI")  # item tags are always little endian in encapsulation

    def _need(self, pos: int, count: int) -> None:
        if pos + count > len(self.buf):
            raise NoPixelData(f"the stored file ends inside an element at byte {pos}")

    def element(self, pos: int) -> Element:
        self._need(pos, 8)
        group, number = self.tag_format.unpack_from(self.buf, pos)
        tag = (group << 16) | number
        if self.implicit or group == 0xFFFE:
            return Element(tag, "", pos + 8, self.u32.unpack_from(self.buf, pos + 4)[0])
        vr = bytes(self.buf[pos + 4 : pos + 6])
        if vr in _LONG_VRS:
            self._need(pos, 12)
            return Element(tag, vr.decode(), pos + 12, self.u32.unpack_from(self.buf, pos + 8)[0])
        return Element(
            tag, vr.decode("latin-1"), pos + 8, self.u16.unpack_from(self.buf, pos + 6)[0]
        )

    def elements(self, pos: int) -> dict[int, Element]:
        found: dict[int, Element] = {}
        while pos < len(self.buf):
            element = self.element(pos)
            found[element.tag] = element
            if element.tag == PIXEL_DATA:
                break
            pos = self._skip(element)
        return found

    def _skip(self, element: Element) -> int:
        if element.length != _UNDEFINED:
            return element.value_offset + element.length
        return self._skip_undefined(element.value_offset)

    def _skip_undefined(self, pos: int) -> int:
        depth = 1  # nested undefined-length sequences and items, closed by delimiters
        while depth:
            self._need(pos, 8)
            group, number, length = self.item.unpack_from(self.buf, pos)
            tag = (group << 16) | number
            if group == 0xFFFE:
                pos += 8
                if tag in (_SEQUENCE_END, 0xFFFEE00D):
                    depth -= 1
                elif length == _UNDEFINED:
                    depth += 1
                else:
                    pos += length
                continue
            inner = self.element(pos)
            if inner.length == _UNDEFINED:
                depth += 1
                pos = inner.value_offset
            else:
                pos = inner.value_offset + inner.length
        return pos

    def fragments(self, pos: int) -> list[Range]:
        """Basic Offset Table item first, then every fragment, as (offset, length)."""
        found: list[Range] = []
        while True:
            self._need(pos, 8)
            group, number, length = self.item.unpack_from(self.buf, pos)
            tag = (group << 16) | number
            if tag == _SEQUENCE_END:
                return found
            if tag != _ITEM:
                raise NoPixelData(f"encapsulated pixel data holds a non-item tag {tag:08X}")
            self._need(pos + 8, length)
            found.append((pos + 8, length))
            pos += 8 + length
