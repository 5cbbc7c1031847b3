"""One import: a file's bytes → the DICOM object of an order, stored through the archive, and
the original kept as a blob linked to it (RIS-5.7, RIS-6.8, PACS-5.4, FEAT-2.2).

Order of work: the original's blob is written and held, the object is stored (durable and
indexed, as a C-STORE), then the link row is committed, then the hold ends. A crash before the
link leaves an unreferenced original that the next start removes, and the file is imported
again from its watch folder (or the upload was never acknowledged).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from pydicom.uid import SecondaryCaptureImageStorage

from mekong.edge.dicomize.common import Origin, part10
from mekong.edge.dicomize.jpeg import NotJpeg, jpeg_info
from mekong.edge.dicomize.kinds import kind_of
from mekong.edge.dicomize.pdf import NotAPdf, check_pdf, pdf_object
from mekong.edge.dicomize.still import NotAnImage, jpeg_object, png_object
from mekong.edge.dicomize.video import NotAVideo, probe, video_dataset, write_part10
from mekong.edge.imports.convert import MEDIA_TYPES, NotConvertible, origin, sniff
from mekong.edge.imports.transcode import transcode
from mekong.edge.labels.bind import accession_in_image
from mekong.edge.orders import OrderContext, order_context
from mekong.shared.archive import Archive
from mekong.shared.audit.log import AuditLog
from mekong.shared.audit.trail import AuditEvent
from mekong.shared.config import CaptureDeviceConfig
from mekong.shared.db import originals
from mekong.shared.db.index import Index
from mekong.shared.storage.blobs import BlobStore

log = logging.getLogger(__name__)


class StoreRefused(RuntimeError):
    """The archive did not store the object (disk full, invalid): the message says why."""


@dataclass(frozen=True)
class Actor:
    name: str = "system"
    kind: str = "system"
    address: str = ""


@dataclass
class ImportResult:
    sop_uids: list[str]
    media_type: str
    accession: str
    duplicate: bool = False
    transcoded: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        return {"sop_uids": self.sop_uids, "media_type": self.media_type,
                "accession": self.accession, "duplicate": self.duplicate,
                "transcoded": self.transcoded}  # fmt: skip


class Importer:
    def __init__(self, index: Index, blobs: BlobStore, archive: Archive, audit: AuditLog | None,
                 devices: tuple[CaptureDeviceConfig, ...], work_dir: Path) -> None:  # fmt: skip
        self.index, self.blobs, self.archive, self.audit = index, blobs, archive, audit
        self.devices = {d.name: d for d in devices}
        self.work_dir = work_dir
        self._pool: ProcessPoolExecutor | None = None

    def device_kind(self, device: str, default: str = "other") -> str:
        found = self.devices.get(device)
        return found.kind if found else default

    async def import_bytes(
        self, data: bytes, filename: str, accession: str, device: str, source: str,
        actor: Actor, kind: str = "other",
    ) -> ImportResult:  # fmt: skip
        """Import one file's content; raises NotConvertible, UnknownOrder or StoreRefused.
        Without ``accession``, a JPEG/PNG showing an order's QR label is that order's."""
        media = sniff(data[:16])
        _precheck(media, data)
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        accession = accession.strip()
        if not accession and media in ("jpeg", "png"):  # a QR label in the picture (FEAT-5)
            accession = await accession_in_image(self.index, data)
        done = await self.index.reading(
            lambda conn: originals.already_imported(conn, digest, accession)
        )
        if done:
            return ImportResult(done, MEDIA_TYPES[media], accession, duplicate=True)
        ctx = await order_context(self.index, accession)
        chosen = origin(media, device, self.device_kind(device, kind))
        made, transcoded = await self._convert(ctx, media, data, chosen, filename, device, kind)
        sop_uid = await self._store(made, data, originals.Original(
            "", digest, len(data), MEDIA_TYPES[media], filename[:255], ctx.accession, device,
        ), source)  # fmt: skip
        result = ImportResult([sop_uid], MEDIA_TYPES[media], ctx.accession, False, transcoded)
        self._audit(actor, "success", sop_uid, ctx, {"file": filename, "device": device,
                                                     "media_type": result.media_type})  # fmt: skip
        return result

    async def _convert(self, ctx: OrderContext, media: str, data: bytes, chosen: Origin,
                       filename: str, device: str, kind: str) -> tuple[bytes, bool]:  # fmt: skip
        try:
            if media == "jpeg":
                ds = jpeg_object(ctx, data, SecondaryCaptureImageStorage, chosen)
            elif media == "png":
                ds = await asyncio.to_thread(png_object, ctx, data, chosen)
            elif media == "pdf":
                ds = pdf_object(ctx, data, chosen, Path(filename).stem)
            else:
                video_class = kind_of(self.device_kind(device, kind)).video_class
                return await self._video(ctx, data, chosen, video_class)
            return await asyncio.to_thread(part10, ds), False
        except (NotAnImage, NotJpeg, NotAPdf, NotAVideo) as exc:
            raise NotConvertible(str(exc)) from None

    async def _video(self, ctx: OrderContext, data: bytes, chosen: Origin,
                     video_class: str) -> tuple[bytes, bool]:  # fmt: skip
        self.work_dir.mkdir(parents=True, exist_ok=True)
        stem = self.work_dir / uuid.uuid4().hex
        source, encoded, staged = (stem.with_suffix(s) for s in (".in.mp4", ".mp4", ".dcm"))
        try:
            await asyncio.to_thread(source.write_bytes, data)
            info = await asyncio.to_thread(probe, source)
            transcoded = not info.wrappable
            if transcoded:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._workers(), transcode, str(source),
                                           str(encoded), float(info.fps))  # fmt: skip
                info = await asyncio.to_thread(probe, encoded)
            else:
                source.rename(encoded)
            ds = video_dataset(ctx, info, encoded.stat().st_size, video_class, chosen)
            await asyncio.to_thread(write_part10, ds, encoded, staged)
            return await asyncio.to_thread(staged.read_bytes), transcoded  # upload-sized
        finally:
            for path in (source, encoded, staged):
                path.unlink(missing_ok=True)

    def _workers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"))
        return self._pool

    async def _store(self, made: bytes, data: bytes, original: originals.Original,
                     source: str) -> str:  # fmt: skip
        blob = await asyncio.to_thread(self.blobs.write, data)
        try:
            result = await self.archive.store(made, source="import")
            if not result.ok:
                raise StoreRefused(f"the archive refused the object: {result.message}")
            linked = originals.Original(result.sop_uid, *_rest(original))
            await asyncio.to_thread(self.blobs.sync_dirs, {blob.path})
            await self.index.transaction(lambda conn: originals.link(conn, linked, source))
            return result.sop_uid
        finally:
            await asyncio.to_thread(self.blobs.release, blob.hold)

    def _audit(self, actor: Actor, outcome: str, sop_uid: str, ctx: OrderContext | None,
               detail: dict[str, Any]) -> None:  # fmt: skip
        if self.audit is None:
            return
        patient = ctx.patient_id if ctx else ""
        self.audit.record(AuditEvent(actor.name[:128], actor.kind, "import.store", outcome,
                                     actor.address, sop_uid, patient[:64], detail))  # fmt: skip

    def refused(self, actor: Actor, filename: str, reason: str) -> None:
        """Audit a file that was not imported."""
        self._audit(actor, "failure", "", None, {"file": filename, "reason": reason})

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


def _precheck(media: str, data: bytes) -> None:
    """A damaged file is refused for what it is before its order is looked up."""
    try:
        if media == "jpeg":
            jpeg_info(data)
        elif media == "pdf":
            check_pdf(data)
    except (NotJpeg, NotAPdf) as exc:
        raise NotConvertible(str(exc)) from None


def _rest(original: originals.Original) -> tuple:
    return (original.digest, original.size, original.media_type, original.filename,
            original.accession, original.device)  # fmt: skip
