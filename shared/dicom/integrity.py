"""Structural check that an encoded dataset is complete.

pydicom reads a dataset cut off inside its pixel data without complaint, so the receive path
walks the element headers itself: every defined length must fit in the buffer and every
undefined-length sequence or encapsulated pixel data must reach its delimiter. Values are
skipped, not decoded, so this costs microseconds per instance.
"""

from __future__ import annotations

import struct
import zlib

from pydicom import uid

_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}  # fmt: skip


class IncompleteDataset(ValueError):
    """The dataset ends before an element it declares, or is otherwise malformed."""


def check_complete(data: bytes | memoryview, transfer_syntax: str) -> None:
    """Raise :class:`IncompleteDataset` unless ``data`` (no file meta) is structurally whole.

    A memoryview is walked in place (no copy: a multi-GB video object is not duplicated)."""
    buffer: bytes | memoryview = data
    if transfer_syntax == uid.DeflatedExplicitVRLittleEndian:
        try:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            buffer = inflater.decompress(bytes(data))
        except zlib.error as exc:
            raise IncompleteDataset(f"deflated dataset cannot be inflated: {exc}") from None
        if not inflater.eof:
            raise IncompleteDataset("deflated dataset is cut off")
    walker = _Walker(
        buffer,
        implicit=transfer_syntax == uid.ImplicitVRLittleEndian,
        endian=">" if transfer_syntax == uid.ExplicitVRBigEndian else "<",
    )
    try:
        walker.dataset(0, stop_at_item_end=False, implicit=walker.implicit)
    except RecursionError:  # hundreds of nested undefined-length sequences
        raise IncompleteDataset("sequences nested too deeply to be read") from None


class _Walker:
    def __init__(self, buffer: bytes | memoryview, implicit: bool, endian: str) -> None:
        self.buffer = buffer
        self.end = len(buffer)
        self.implicit = implicit
        self.tag_format = struct.Struct(endian + "HH")
        self.u16 = struct.Struct(endian + "H")
        self.u32 = struct.Struct(endian + "I")

    def _need(self, pos: int, count: int, what: str) -> None:
        if pos + count > self.end:
            raise IncompleteDataset(f"dataset ends inside {what} at byte {pos}")

    def _tag(self, pos: int) -> int:
        group, element = self.tag_format.unpack_from(self.buffer, pos)
        return (group << 16) | element

    def dataset(self, pos: int, stop_at_item_end: bool, implicit: bool) -> int:
        while pos < self.end:
            self._need(pos, 8, "an element header")
            tag = self._tag(pos)
            if tag == _ITEM_END and stop_at_item_end:
                return pos + 8
            vr = b""
            if implicit or tag >> 16 == 0xFFFE:
                length, pos = self.u32.unpack_from(self.buffer, pos + 4)[0], pos + 8
            else:
                vr = bytes(self.buffer[pos + 4 : pos + 6])
                if vr in _LONG_VRS:
                    self._need(pos, 12, "an element header")
                    length, pos = self.u32.unpack_from(self.buffer, pos + 8)[0], pos + 12
                else:
                    length, pos = self.u16.unpack_from(self.buffer, pos + 6)[0], pos + 8
            if length == _UNDEFINED:
                pos = self.items(pos, implicit=implicit or vr == b"UN", tag=tag)
            else:
                self._need(pos, length, f"element ({tag >> 16:04X},{tag & 0xFFFF:04X})")
                pos += length
        if stop_at_item_end:
            raise IncompleteDataset("dataset ends inside a sequence item")
        return pos

    def items(self, pos: int, implicit: bool, tag: int) -> int:
        where = f"element ({tag >> 16:04X},{tag & 0xFFFF:04X})"
        while True:
            self._need(pos, 8, where)
            item_tag = self._tag(pos)
            length = self.u32.unpack_from(self.buffer, pos + 4)[0]
            pos += 8
            if item_tag == _SEQUENCE_END:
                return pos
            if item_tag != _ITEM:
                raise IncompleteDataset(f"{where} holds a non-item tag {item_tag:08X}")
            if length == _UNDEFINED:
                pos = self.dataset(pos, stop_at_item_end=True, implicit=implicit)
            else:
                self._need(pos, length, where)
                pos += length
