"""Video objects: an MP4 (H.264 High ≤ Level 4.1, yuv420p) as Video Endoscopic, Video
Photographic or US Multi-frame in MPEG-4 AVC/H.264 High Profile / Level 4.1
(``1.2.840.10008.1.2.4.102``; the Fragmentable ``.102.1`` past 4 GB), the whole MP4 file
encapsulated unchanged (standards.md §1.3). RIS-5.6, RIS-6.7, FEAT-2.1, FEAT-2.3.

Frame count and rate come from the stream itself (``stsz`` sample count; the rate from the
count and the track duration). The Part 10 file is written by streaming the MP4 into it, so a
clip is never held in memory to be encapsulated.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
from pydicom import Dataset
from pydicom.uid import MPEG4HP41, MPEG4HP41F, UltrasoundMultiFrameImageStorage

from mekong.edge.dicomize.common import Origin, anatomic_region, base_dataset, part10
from mekong.edge.orders import OrderContext

MAX_FRAGMENT = 0xFFFFFFFE  # one fragment holds at most 2^32 - 2 bytes (even length)
FRAME_TIME_TAG = 0x00181063
_PIXEL_DATA = b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff"
_ITEM = b"\xfe\xff\x00\xe0"
_SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


class NotAVideo(ValueError):
    """The file is not a readable video."""


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    profile: str
    level: int
    pix_fmt: str
    width: int
    height: int
    frames: int
    fps: Fraction
    has_audio: bool
    container: str

    @property
    def wrappable(self) -> bool:
        """Encapsulated unchanged: H.264 High ≤ 4.1, yuv420p, video only, in MP4."""
        return (
            self.codec == "h264"
            and self.profile == "High"
            and 0 < self.level <= 41
            and self.pix_fmt == "yuv420p"
            and not self.has_audio
            and "mp4" in self.container
        )


def probe(path: Path, offset: int = 0) -> VideoInfo:
    """Read the container and stream headers (and count packets if the header has no count);
    ``offset``: where the MP4 starts in the file (a clip recorded into its Part 10 file)."""
    try:
        with _opened(path, offset) as source, av.open(source) as container:
            if not container.streams.video:
                raise NotAVideo("the file has no video stream")
            stream = container.streams.video[0]
            codec = stream.codec_context
            frames = stream.frames or _count_packets(container, stream)
            fps = _rate(stream, frames)
            return VideoInfo(
                codec.name, codec.profile or "", codec.level or 0,
                stream.format.name if stream.format else "", codec.width, codec.height,
                frames, fps, bool(container.streams.audio), container.format.name,
            )  # fmt: skip
    except av.FFmpegError as exc:
        raise NotAVideo(f"the video cannot be read: {exc}") from None


@contextlib.contextmanager
def _opened(path: Path, offset: int) -> Iterator[Any]:
    if not offset:
        yield str(path)
        return
    with open(path, "rb") as raw:
        yield OffsetFile(raw, offset)


class OffsetFile:
    """A file seen from ``offset`` on: the MP4 muxer/demuxer works inside a Part 10 file."""

    def __init__(self, raw: BinaryIO, offset: int) -> None:
        self.raw, self.offset = raw, offset
        raw.seek(offset)

    def read(self, size: int = -1) -> bytes:
        return self.raw.read(size)

    def write(self, data: bytes) -> int:
        return self.raw.write(data)

    def seek(self, position: int, whence: int = 0) -> int:
        if whence == 0:
            position += self.offset
        return self.raw.seek(position, whence) - self.offset

    def tell(self) -> int:
        return self.raw.tell() - self.offset

    def seekable(self) -> bool:
        return True

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        self.raw.close()


def _count_packets(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    return sum(1 for packet in container.demux(stream) if packet.size)


def _rate(stream: av.VideoStream, frames: int) -> Fraction:
    if stream.duration and stream.time_base and frames:
        seconds = stream.duration * stream.time_base
        if seconds > 0:
            return Fraction(frames) / Fraction(seconds)
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        raise NotAVideo("the video has no frame rate")
    return Fraction(rate)


def video_dataset(
    ctx: OrderContext, info: VideoInfo, size: int, sop_class: str, origin: Origin
) -> Dataset:
    """Every attribute of the video object but its Pixel Data (``size``: MP4 bytes)."""
    syntax = MPEG4HP41 if size <= MAX_FRAGMENT else MPEG4HP41F
    ds = base_dataset(ctx, sop_class, origin, syntax)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    ds.PhotometricInterpretation = "YBR_PARTIAL_420"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.Rows, ds.Columns, ds.NumberOfFrames = info.height, info.width, info.frames
    ds.FrameIncrementPointer = FRAME_TIME_TAG
    ds.FrameTime = f"{1000 / float(info.fps):.4f}".rstrip("0").rstrip(".")
    ds.CineRate = round(info.fps)
    ds.RecommendedDisplayFrameRate = round(info.fps)
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_14496_10"
    ds.PatientOrientation = ""
    ds.EncapsulatedPixelDataValueTotalLength = size
    if sop_class == UltrasoundMultiFrameImageStorage:
        ds.Laterality = ""
    else:
        ds.AcquisitionContextSequence = []
        anatomic_region(ds, origin)
    return ds


@dataclass(frozen=True)
class ClipHeader:
    """The Part 10 bytes a live clip's MP4 is recorded behind, with the offsets of the values
    only known at the end (number of frames, lengths), which keep a fixed size: the MP4 is
    written once, straight into the file that becomes the stored object (no copy at stop)."""

    data: bytes
    frames_at: int  # NumberOfFrames value: 12 bytes, right-aligned (IS allows leading spaces)
    total_length_at: int  # EncapsulatedPixelDataValueTotalLength (UV, 8 bytes)
    item_length_at: int  # the fragment's item length (4 bytes)


def clip_header(ds: Dataset) -> ClipHeader:
    """``ds`` from :func:`video_dataset` (any size ≤ 4 GB): serialised with fixed-size fields."""
    raw = part10(ds)
    frames = b"\x28\x00\x08\x00IS"
    start = raw.index(frames)
    length = struct.unpack_from("<H", raw, start + 6)[0]
    raw = raw[:start] + frames + struct.pack("<H", 12) + b"1".rjust(12) + raw[start + 8 + length :]
    total = raw.index(b"\xe0\x7f\x03\x00UV\x00\x00\x08\x00\x00\x00") + 12
    pixel = raw + _PIXEL_DATA + _ITEM + b"\x00\x00\x00\x00" + _ITEM + b"\x00\x00\x00\x00"
    return ClipHeader(pixel, start + 8, total, len(pixel) - 4)


def finish_clip(path: Path, header: ClipHeader, frames: int) -> str:
    """Close the Part 10 file a clip was recorded into: pad the MP4 to even length, end the
    pixel data, fill in frames and lengths; returns the file's SHA-256."""
    with open(path, "r+b") as handle:
        size = handle.seek(0, 2) - len(header.data)
        if not 0 < size <= MAX_FRAGMENT:
            raise NotAVideo(f"a recorded MP4 of {size} bytes does not fit one fragment")
        handle.write(b"\x00" * (size % 2) + _SEQUENCE_END)
        for at, value in (
            (header.frames_at, str(frames).rjust(12).encode()),
            (header.total_length_at, struct.pack("<Q", size)),
            (header.item_length_at, struct.pack("<I", size + size % 2)),
        ):
            handle.seek(at)
            handle.write(value)
        handle.flush()
        handle.seek(0)
        digest = hashlib.sha256()
        while chunk := handle.read(16 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def write_part10(ds: Dataset, mp4: Path, out: Path) -> tuple[int, str]:
    """Write ``ds`` with the MP4 file encapsulated (empty Basic Offset Table; one fragment, or
    fragments of at most 2^32 - 2 bytes past 4 GB) to ``out``; returns its size and SHA-256
    (computed while writing, so the archive need not read the file again)."""
    size = mp4.stat().st_size
    digest = hashlib.sha256()
    with open(out, "wb") as handle, open(mp4, "rb") as source:

        def write(data: bytes) -> None:
            handle.write(data)
            digest.update(data)

        write(part10(ds))
        write(_PIXEL_DATA + _ITEM + b"\x00\x00\x00\x00")
        remaining = size
        while remaining:
            length = min(remaining, MAX_FRAGMENT)
            padded = length + (length % 2)
            write(_ITEM + struct.pack("<I", padded))
            _copy(source, write, length)
            if padded != length:
                write(b"\x00")
            remaining -= length
        write(_SEQUENCE_END)
        return handle.tell(), digest.hexdigest()


def _copy(source, write, length: int) -> None:  # type: ignore[no-untyped-def]
    copied = 0
    while copied < length:
        chunk = source.read(min(16 * 1024 * 1024, length - copied))
        if not chunk:
            raise NotAVideo("the MP4 file shrank while it was being encapsulated")
        write(chunk)
        copied += len(chunk)
