"""DICOM upper layer on asyncio streams (PS3.8): PDU framing, P-DATA fragments, DIMSE commands.

Only what the front door (``frontdoor.py``) needs to serve storage and verification
associations itself; association PDUs are encoded and decoded with pynetdicom's PDU classes.
"""

from __future__ import annotations

import asyncio
import io
import struct
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

A_ASSOCIATE_RQ = 0x01
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_ABORT = 0x07
MAX_PDU_LENGTH = 1 << 26  # refuse absurd lengths instead of allocating them
_PDU_HEADER = struct.Struct(">BxI")
_PDV_HEADER = struct.Struct(">IBB")

RELEASE_RP = bytes([0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0])


class ProtocolError(ValueError):
    """The peer broke the upper-layer protocol; the association is aborted."""


def abort_pdu(source: int = 0x02, reason: int = 0x00) -> bytes:
    return bytes([A_ABORT, 0, 0, 0, 0, 4, 0, 0, source, reason])


async def read_pdu(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One PDU: (type, whole PDU bytes including its 6-byte header)."""
    header = await reader.readexactly(6)
    pdu_type, length = _PDU_HEADER.unpack(header)
    if length > MAX_PDU_LENGTH:
        raise ProtocolError(f"PDU of {length} bytes")
    return pdu_type, header + await reader.readexactly(length)


@dataclass
class Message:
    """A DIMSE message being reassembled from P-DATA fragments."""

    context_id: int
    command: bytearray = field(default_factory=bytearray)
    dataset: bytearray = field(default_factory=bytearray)
    command_done: bool = False
    dataset_done: bool = False
    decoded: Dataset | None = None

    @property
    def needs_dataset(self) -> bool:
        assert self.decoded is not None
        return int(self.decoded.get("CommandDataSetType", 0x0101)) != 0x0101

    @property
    def complete(self) -> bool:
        return self.command_done and (not self.needs_dataset or self.dataset_done)


def add_fragments(pdu: bytes, message: Message | None) -> tuple[Message | None, list[Message]]:
    """Feed one P-DATA-TF PDU; returns the message still open and those completed."""
    done: list[Message] = []
    view = memoryview(pdu)
    offset = 6
    while offset < len(pdu):
        if offset + 6 > len(pdu):
            raise ProtocolError("P-DATA-TF ends inside a PDV header")
        length, context_id, control = _PDV_HEADER.unpack_from(view, offset)
        end = offset + 4 + length
        if length < 2 or end > len(pdu):
            raise ProtocolError("PDV length does not fit its PDU")
        data = view[offset + 6 : end]
        offset = end
        if message is None:
            message = Message(context_id)
        elif message.context_id != context_id:
            raise ProtocolError("fragments of one message on two presentation contexts")
        if control & 0x01:  # command fragment
            message.command += data
            if control & 0x02:
                message.command_done = True
                message.decoded = decode_command(bytes(message.command))
        else:
            if not message.command_done:
                raise ProtocolError("data set fragment before the command set was complete")
            message.dataset += data
            message.dataset_done = bool(control & 0x02)
        if message.command_done and message.complete:
            done.append(message)
            message = None
    return message, done


def decode_command(data: bytes) -> Dataset:
    try:
        return read_dataset(io.BytesIO(data), is_implicit_VR=True, is_little_endian=True)
    except Exception as exc:
        raise ProtocolError(f"command set cannot be decoded: {exc}") from None


def encode_command(command: Dataset) -> bytes:
    """Implicit VR Little Endian command set with its (0000,0000) group length first."""
    body = io.BytesIO()
    write_dataset(_implicit_le_stream(body), command)
    elements = body.getvalue()
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(elements)) + elements


def command_pdu(context_id: int, command: Dataset) -> bytes:
    """A P-DATA-TF PDU holding one whole command set (responses are small)."""
    data = encode_command(command)
    pdv = _PDV_HEADER.pack(len(data) + 2, context_id, 0x03) + data
    return _PDU_HEADER.pack(P_DATA_TF, len(pdv)) + pdv


def _implicit_le_stream(buffer: io.BytesIO):  # type: ignore[no-untyped-def]
    from pydicom.filebase import DicomFileLike

    stream = DicomFileLike(buffer)
    stream.is_little_endian = True
    stream.is_implicit_VR = True
    return stream
