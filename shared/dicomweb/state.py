"""What DICOMweb keeps between requests: where instances are, their frame layouts, metadata.

Everything derived from a blob is cached by its SHA-256 digest, so it can never go stale.
Only the UID → digest lookup can change (an instance replaced); it is kept for two seconds and
checked against the blob's presence before use.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from aiohttp import web

from mekong.shared.archive import Archive
from mekong.shared.db.attributes import Level
from mekong.shared.db.index import Index, StoredInstanceRef
from mekong.shared.db.query import Query
from mekong.shared.dicom.pixeldata import NoPixelData, PixelLayout, pixel_layout
from mekong.shared.dicomweb.dicomjson import instance_metadata
from mekong.shared.storage.blobs import BlobStore

K = TypeVar("K")
V = TypeVar("V")
_LOOKUP_SECONDS = 2.0


class LRU(Generic[K, V]):
    """Least-recently-used map bounded by a total ``size`` (entries, or bytes via ``weigh``)."""

    def __init__(self, capacity: int, weigh: Callable[[V], int] = lambda _: 1) -> None:
        self.capacity, self.weigh, self.size = capacity, weigh, 0
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        if key in self._items:
            self.size -= self.weigh(self._items.pop(key))
        self._items[key] = value
        self.size += self.weigh(value)
        while self.size > self.capacity and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self.size -= self.weigh(dropped)


@dataclass(frozen=True)
class Located:
    study_uid: str
    series_uid: str
    ref: StoredInstanceRef
    path: Path
    patient_id: str = ""

    @property
    def sop_uid(self) -> str:
        return self.ref.sop_uid

    def uri(self, base: str = "") -> str:
        """The instance's WADO-RS path; relative to its series when ``base`` is empty."""
        tail = f"instances/{self.sop_uid}"
        if not base:
            return tail
        return f"{base}/studies/{self.study_uid}/series/{self.series_uid}/{tail}"


class DicomwebState:
    def __init__(self, index: Index, blobs: BlobStore, archive: Archive) -> None:
        self.index, self.blobs, self.archive = index, blobs, archive
        # an edge that frees confirmed studies: makes missing blobs local again (issue 6)
        self.fetch_back: Callable[[list[str]], Awaitable[None]] | None = None
        self._lookups: LRU[tuple[str, str, str], tuple[float, Located]] = LRU(50_000)
        self._layouts: LRU[str, PixelLayout] = LRU(20_000)
        self._metadata: LRU[str, bytes] = LRU(256 * 1024 * 1024, weigh=len)

    async def instance(self, study: str, series: str, sop: str) -> Located:
        key = (study, series, sop)
        cached = self._lookups.get(key)
        if cached and cached[0] > time.monotonic() and cached[1].path.exists():
            return cached[1]
        found = await self.instances(study, series, sop)
        if not found:
            raise web.HTTPNotFound(text=f"no instance {sop} in series {series} of study {study}")
        self._lookups.put(key, (time.monotonic() + _LOOKUP_SECONDS, found[0]))
        return found[0]

    async def instances(self, study: str, series: str = "", sop: str = "") -> list[Located]:
        """Instances of a study / series / one instance, in series then instance order."""
        filters = {"StudyInstanceUID": study}
        if series:
            filters["SeriesInstanceUID"] = series
        if sop:
            filters["SOPInstanceUID"] = sop
        rows = await self.index.find(
            Query(Level.IMAGE, filters, with_digest=True),
            [
                "PatientID",
                "SeriesInstanceUID",
                "SOPInstanceUID",
                "SOPClassUID",
                "AvailableTransferSyntaxUID",
            ],
        )
        if self.fetch_back is not None:
            missing = [r["_digest"] for r in rows if not self.blobs.path_for(r["_digest"]).exists()]
            if missing:
                await self.fetch_back(missing)
        return [
            Located(
                study,
                row["SeriesInstanceUID"],
                StoredInstanceRef(
                    row["SOPInstanceUID"], row["SOPClassUID"], row["AvailableTransferSyntaxUID"],
                    row["_digest"],
                ),
                self.blobs.path_for(row["_digest"]),
                row["PatientID"] or "",
            )
            for row in rows
        ]  # fmt: skip

    async def layout(self, located: Located) -> PixelLayout:
        digest = located.ref.digest
        layout = self._layouts.get(digest)
        if layout is None:
            try:
                layout = await asyncio.to_thread(pixel_layout, located.path)
            except NoPixelData as exc:
                message = f"instance {located.sop_uid} has no readable pixel data: {exc}"
                raise web.HTTPNotFound(text=message) from None
            self._layouts.put(digest, layout)
        return layout

    async def metadata(self, located: Located) -> bytes:
        digest = located.ref.digest
        cached = self._metadata.get(digest)
        if cached is None:
            cached = await asyncio.to_thread(instance_metadata, located.path, located.uri())
            self._metadata.put(digest, cached)
        return cached


STATE_KEY: web.AppKey[DicomwebState] = web.AppKey("dicomweb")


def state(request: web.Request) -> DicomwebState:
    return request.app[STATE_KEY]
