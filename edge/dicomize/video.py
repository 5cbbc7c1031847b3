"""Video objects: an MP4 (H.264 High ≤ Level 4.1, yuv420p) as Video Endoscopic, Video
Photographic or US Multi-frame in MPEG-4 AVC/H.264 High Profile / Level 4.1
(``1.2.840.10008.1.2.4.102``; the Fragmentable ``.102.1`` past 4 GB), the whole MP4 file
encapsulated unchanged (standards.md §1.3). RIS-5.6, RIS-6.7, FEAT-2.1, FEAT-2.3.

Frame count and rate come from the stream itself (``stsz`` sample count; the rate from the
count and the track duration). The Part 10 file is written by streaming the MP4 into it, so a
clip is never held in memory to be encapsulated.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

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


def probe(path: Path) -> VideoInfo:
    """Read the container and stream headers (and count packets if the header has no count)."""
    try:
        with av.open(str(path)) as container:
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


__all__ = ["NotAVideo", "VideoInfo", "probe", "video_dataset", "write_part10"]
