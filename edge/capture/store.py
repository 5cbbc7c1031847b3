"""A finished clip or a snapshot → DICOM of the order → the archive (RIS-5.6, FEAT-2.1).

Objects go through :meth:`Archive.store` like a C-STORE: durable, indexed, visible in C-FIND,
QIDO-RS and the viewer. The MP4 is probed for what it really holds (frame count, rate,
profile) rather than trusting the recorder's count.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from fractions import Fraction
from io import BytesIO
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import MPEG4HP41F

from mekong.edge.capture.images import snapshot_jpeg
from mekong.edge.capture.recording import ClipResult, HeaderMaker
from mekong.edge.dicomize.common import Origin, part10
from mekong.edge.dicomize.kinds import kind_of
from mekong.edge.dicomize.still import jpeg_object
from mekong.edge.dicomize.video import (
    MAX_FRAGMENT,
    ClipHeader,
    VideoInfo,
    clip_header,
    finish_clip,
    probe,
    video_dataset,
    write_part10,
)
from mekong.edge.orders import OrderContext
from mekong.shared.archive import Archive, StoreResult
from mekong.shared.config import CaptureDeviceConfig


class StoreFailed(RuntimeError):
    """The object was made but the archive refused it (the message says why)."""


@dataclass(frozen=True)
class Stored:
    sop_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    frames: int = 1


def origin_for(device: CaptureDeviceConfig, what: str) -> Origin:
    kind = kind_of(device.kind)
    number = 1 if what == "still" else 2
    label = device.label or device.name
    return Origin(
        device=device.name, modality=device.modality or kind.modality,
        series_label=f"capture {what}", series_number=number,
        series_description=f"{label} – {'ảnh' if what == 'still' else 'video'}",
        conversion_type="DV", anatomic_region=device.anatomic_region,
    )  # fmt: skip


async def store_snapshot(
    archive: Archive, device: CaptureDeviceConfig, ctx: OrderContext, frame
) -> Stored:  # type: ignore[no-untyped-def]
    jpeg = await asyncio.to_thread(snapshot_jpeg, frame)
    ds = jpeg_object(ctx, jpeg, kind_of(device.kind).still_class, origin_for(device, "still"))
    result = await archive.store(part10(ds), source="capture")
    return _checked(result, str(ds.SeriesInstanceUID), 1)


def header_maker(device: CaptureDeviceConfig, ctx: OrderContext) -> HeaderMaker:
    """The clip's Part 10 header, made when its first frame's size is known."""

    def make(rows: int, columns: int) -> ClipHeader:
        rate = Fraction(device.fps).limit_denominator(1001)
        info = VideoInfo("h264", "High", 41, "yuv420p", columns, rows, 1, rate, False, "mp4")
        sop_class = kind_of(device.kind).video_class
        return clip_header(video_dataset(ctx, info, 0, sop_class, origin_for(device, "video")))

    return make


async def store_clip(
    archive: Archive, device: CaptureDeviceConfig, ctx: OrderContext, clip: ClipResult
) -> Stored:
    """Finish the Part 10 file the clip was recorded into (frame count from the MP4 itself)
    and store it by renaming it into the blob store: the video is neither copied nor read
    into memory. When anything fails the file is kept in ``failed/`` beside it."""
    stored = False
    try:
        if clip.header is None:
            raise StoreFailed("the clip has no DICOM header")
        header, began = clip.header, time.monotonic()
        info = await asyncio.to_thread(probe, clip.path, len(header.data))
        probed = time.monotonic()
        if clip.path.stat().st_size - len(header.data) > MAX_FRAGMENT:
            digest = await asyncio.to_thread(_refragment, clip.path, header, info.frames)
        else:
            digest = await asyncio.to_thread(finish_clip, clip.path, header, info.frames)
        finished, size = time.monotonic(), clip.path.stat().st_size
        series_uid = _series_of(header)
        result = await archive.store_file(clip.path, source="capture", digest=digest)
        clip.extra["store_steps"] = {
            "probe": round(probed - began, 3), "finish_and_hash": round(finished - probed, 3),
            "archive": round(time.monotonic() - finished, 3), "bytes": size,
        }  # fmt: skip
        done = _checked(result, series_uid, info.frames)
        stored = True
        return done
    finally:
        _settle(clip.path, stored)


def _refragment(path: Path, header: ClipHeader, frames: int) -> str:
    """Past 4 GB (hours of video): the MP4 is copied out and encapsulated again in fragments
    under the Fragmentable transfer syntax (``.102.1``); returns the new file's SHA-256."""
    ds = dcmread(BytesIO(header.data), stop_before_pixels=True)
    mp4, staged = path.with_suffix(".mp4"), path.with_suffix(".part10")
    with open(path, "rb") as source, open(mp4, "wb") as target:
        source.seek(len(header.data))
        shutil.copyfileobj(source, target, 16 * 1024 * 1024)
    ds.NumberOfFrames = frames
    ds.EncapsulatedPixelDataValueTotalLength = mp4.stat().st_size
    ds.file_meta.TransferSyntaxUID = MPEG4HP41F
    _, digest = write_part10(ds, mp4, staged)
    mp4.unlink()
    staged.replace(path)
    return digest


def _series_of(header: ClipHeader) -> str:
    ds = dcmread(BytesIO(header.data), stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
    return str(ds.SeriesInstanceUID)


def _settle(mp4: Path, stored: bool) -> None:
    if stored:
        mp4.unlink(missing_ok=True)
    elif mp4.exists():
        (mp4.parent / "failed").mkdir(exist_ok=True)
        mp4.rename(mp4.parent / "failed" / mp4.name)


def _checked(result: StoreResult, series_uid: str, frames: int) -> Stored:
    if not result.ok:
        raise StoreFailed(f"the archive refused the object: {result.message}")
    return Stored(result.sop_uid, result.sop_class_uid, result.study_uid, series_uid, frames)
