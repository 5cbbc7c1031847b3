"""A finished clip or a snapshot → DICOM of the order → the archive (RIS-5.6, FEAT-2.1).

Objects go through :meth:`Archive.store` like a C-STORE: durable, indexed, visible in C-FIND,
QIDO-RS and the viewer. The MP4 is probed for what it really holds (frame count, rate,
profile) rather than trusting the recorder's count.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from mekong.edge.capture.images import snapshot_jpeg
from mekong.edge.capture.recording import ClipResult
from mekong.edge.dicomize.common import Origin, part10
from mekong.edge.dicomize.kinds import kind_of
from mekong.edge.dicomize.still import jpeg_object
from mekong.edge.dicomize.video import probe, video_dataset, write_part10
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


async def store_clip(
    archive: Archive, device: CaptureDeviceConfig, ctx: OrderContext, clip: ClipResult
) -> Stored:
    """Probe the MP4, encapsulate it unchanged (streamed into a Part 10 file beside it), store
    that file by renaming it into the blob store; the files are removed afterwards.

    When anything fails the MP4 is kept in ``failed/`` beside it, never deleted."""
    staged = clip.path.with_suffix(".dcm")
    stored = False
    try:
        info = await asyncio.to_thread(probe, clip.path)
        size = clip.path.stat().st_size
        sop_class = kind_of(device.kind).video_class
        ds = video_dataset(ctx, info, size, sop_class, origin_for(device, "video"))
        _, digest = await asyncio.to_thread(write_part10, ds, clip.path, staged)
        result = await archive.store_file(staged, source="capture", digest=digest)
        done = _checked(result, str(ds.SeriesInstanceUID), info.frames)
        stored = True
        return done
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
        _settle(clip.path, stored)


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
