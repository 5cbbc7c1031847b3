"""One clip being recorded: constant-frame-rate placement and the hand-over of frames to the
encoder process through shared memory (RIS-6.7; dropped and duplicated frames counted)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from mekong.edge.capture.cfr import CfrClock
from mekong.edge.capture.encoder import ClipSpec
from mekong.edge.capture.ring import FrameRing
from mekong.edge.dicomize.video import ClipHeader

HeaderMaker = Callable[[int, int], ClipHeader]  # (rows, columns) → the Part 10 header

RING_SLOTS = 30  # one second of 30 fps frames may wait for the encoder


@dataclass
class ClipResult:
    path: Path
    accession: str
    frames: int  # frames the encoder wrote
    fps: float
    dropped: int
    duplicated: int
    started_at: float
    stopped_at: float
    error: str = ""
    header: ClipHeader | None = None  # the MP4 is in ``path`` behind this header
    extra: dict = field(default_factory=dict)


class Recording:
    """Fed by the capture thread only (single-threaded by construction)."""

    def __init__(
        self, conn: Connection, path: Path, accession: str, fps: float, limit: int,
        preset: str, crf: int, make_header: HeaderMaker | None = None,
    ) -> None:  # fmt: skip
        self.conn = conn
        self.path = path
        self.accession = accession
        self.fps = fps
        self.limit = limit  # frames; 0 = until stopped
        self.preset, self.crf = preset, crf
        self.make_header = make_header
        self.header: ClipHeader | None = None
        self.clock = CfrClock(fps)
        self.ring: FrameRing | None = None
        self.sent = 0  # frames (new or repeated) sent to the encoder
        self.started_at = time.time()
        self.stopped_at = 0.0
        self.ending = False
        self.stop_requested = False
        self.result: Future[ClipResult] = Future()

    def feed(self, frame: np.ndarray, stamp: float) -> None:
        if self.ending:
            return
        if self.ring is None:
            self._begin(frame)
        placement = self.clock.place(stamp)
        for _ in range(placement.duplicates):
            self._send(("repeat",))
        if placement.take:
            slot = self.ring.put(frame) if self.ring else None
            if slot is None:
                self.clock.lose()
                self._send(("repeat",))
            else:
                self._send(("frame", slot))
        if self.limit and self.sent >= self.limit:
            self.end()

    def _begin(self, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        self.header = self.make_header(height, width) if self.make_header else None
        self.path.write_bytes(self.header.data if self.header else b"")
        self.ring = FrameRing(RING_SLOTS, height, width)
        offset = len(self.header.data) if self.header else 0
        spec = ClipSpec(str(self.path), self.ring.name, self.ring.shape, self.fps,
                        self.preset, self.crf, offset)  # fmt: skip
        self.conn.send(("begin", spec))

    def _send(self, message: tuple) -> None:
        if self.limit and self.sent >= self.limit:
            if message[0] == "frame":
                self.ring.release(message[1])  # type: ignore[union-attr]
            return
        self.conn.send(message)
        self.sent += 1

    def end(self) -> None:
        """No more frames: the encoder finishes the MP4 and answers ``done``."""
        if self.ending:
            return
        self.ending = True
        self.stopped_at = time.time()
        if self.ring is None:  # stopped before any frame arrived
            self.result.set_result(self._result(0, "the device gave no frame"))
            return
        self.conn.send(("end",))

    def on_message(self, message: tuple) -> bool:
        """A message from the encoder; True when the clip is finished."""
        if message[0] == "free" and self.ring is not None:
            self.ring.release(message[1])
            return False
        if message[0] == "done":
            if self.ring is not None:
                self.ring.close()
            self.result.set_result(self._result(message[1], message[2]))
            return True
        return False

    def fail(self, error: str) -> None:
        if self.ring is not None:
            self.ring.close()
        if not self.result.done():
            self.result.set_result(self._result(0, error))

    def _result(self, frames: int, error: str) -> ClipResult:
        return ClipResult(
            self.path, self.accession, frames, self.fps, self.clock.dropped,
            self.clock.duplicated, self.started_at, self.stopped_at or time.time(), error,
            self.header,
        )  # fmt: skip

    def counters(self) -> dict[str, int | float | str]:
        return {
            "accession": self.accession,
            "frames": self.sent,
            "dropped": self.clock.dropped,
            "duplicated": self.clock.duplicated,
            "seconds": round(self.sent / self.fps, 2),
            "limit_frames": self.limit,
        }
