"""A QR label seen in a picture binds an import or a capture session to its order (FEAT-5.3):
the label's key → the order's accession, when no accession was given."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from mekong.edge.labels import decode
from mekong.shared.db.index import Index
from mekong.shared.ris import labels

SCAN_SECONDS = 3.0  # how long a capture device's frames are looked at for a label
SCAN_INTERVAL = 0.2


async def accession_of_key(index: Index, key: str) -> str:
    """The accession of the order whose label key this is, or ""."""
    if not key:
        return ""
    row = await index.reading(lambda conn: labels.order_of_key(conn, key))
    return str(row.accession) if row is not None else ""


async def accession_in_image(index: Index, data: bytes) -> str:
    """The order of the label in an uploaded JPEG/PNG, or ""."""
    key = await asyncio.to_thread(decode.key_in_image, data)
    return await accession_of_key(index, key)


async def accession_in_frames(
    index: Index, latest: Callable[[], np.ndarray | None], seconds: float = SCAN_SECONDS
) -> str:
    """Look at a capture device's latest frame every 0.2 s for up to ``seconds`` (the label
    held up to the camera at the start of a session); the order of the first key seen, or ""."""
    deadline = time.monotonic() + seconds
    while True:
        frame = latest()
        if frame is not None:
            key = await asyncio.to_thread(decode.key_in_frame, frame)
            if key:
                return await accession_of_key(index, key)
        if time.monotonic() >= deadline:
            return ""
        await asyncio.sleep(SCAN_INTERVAL)
