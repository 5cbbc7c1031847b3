"""One open capture device: its capture thread, latest frame, clip and encoder process.

The capture thread reads at the source's rate and does little else: it keeps the latest frame
(preview and snapshot work on it elsewhere), feeds the clip being recorded, and reads the
encoder's answers. Encoding runs in the device's encoder process; so neither HTTP clients nor
the event loop can make the capture lose frames.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from mekong.edge.capture import encoder
from mekong.edge.capture.images import crop_box, cropped
from mekong.edge.capture.recording import ClipResult, HeaderMaker, Recording
from mekong.edge.capture.sources import FrameSource, SourceError, open_source
from mekong.shared.config import CaptureDeviceConfig

log = logging.getLogger(__name__)


class DeviceBusy(RuntimeError):
    """A clip is already being recorded on this device."""


class CaptureDevice:
    def __init__(self, config: CaptureDeviceConfig, work_dir: Path) -> None:
        self.config = config
        self.work_dir = work_dir
        self.state = "closed"  # closed | opening | running | error
        self.error = ""
        self.frames_read = 0
        self.source_fps = 0.0
        self.frame_size: tuple[int, int] = (0, 0)
        self.box: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.latest: np.ndarray | None = None
        self.latest_at = 0.0
        self.recording: Recording | None = None
        self.last_result: ClipResult | None = None
        self.last_used = time.monotonic()
        self._source: FrameSource | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._opened = threading.Event()
        self._lock = threading.Lock()
        self._encoder: tuple | None = None
        self._encoder_lock = threading.Lock()

    # --- life cycle (called from the event loop through a worker thread) -------------------

    def open(self, timeout: float = 15.0) -> None:
        """Start the capture thread (if not running) and wait for the first frame."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._closing.clear()
                self._opened.clear()
                self.state, self.error = "opening", ""
                self._thread = threading.Thread(
                    target=self._run, name=f"capture-{self.config.name}", daemon=True
                )
                self._thread.start()
        self.last_used = time.monotonic()
        if not self._opened.wait(timeout):
            raise SourceError(self.error or f"{self.config.name}: no frame within {timeout} s")
        if self.state == "error":
            raise SourceError(self.error)

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._thread = None
        if self._encoder is not None:
            process, conn = self._encoder
            with contextlib.suppress(OSError):
                conn.send(("quit",))
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
            self._encoder = None
        self.state, self.latest = "closed", None

    def ensure_encoder(self) -> None:
        with self._encoder_lock:
            if self._encoder is None or not self._encoder[0].is_alive():
                self._encoder = encoder.start_encoder()

    # --- clip --------------------------------------------------------------------------------

    def start_clip(
        self, accession: str, seconds: float = 0.0, make_header: HeaderMaker | None = None
    ) -> Recording:
        if self.recording is not None:
            raise DeviceBusy(
                f"{self.config.name} is recording for accession {self.recording.accession}"
            )
        self.ensure_encoder()
        assert self._encoder is not None
        limit = round(seconds * self.config.fps) if seconds else 0
        suffix = ".dcm" if make_header else ".mp4"
        path = self.work_dir / f"{self.config.name}-{uuid.uuid4().hex}{suffix}"
        recording = Recording(self._encoder[1], path, accession, self.config.fps, limit,
                              self.config.preset, self.config.crf, make_header)  # fmt: skip
        self.recording = recording
        self.last_used = time.monotonic()
        return recording

    def stop_clip(self) -> Future[ClipResult] | None:
        """Ask the capture thread to end the clip; the future gives the finished MP4."""
        recording = self.recording
        if recording is None:
            return None
        recording.stop_requested = True  # the capture thread ends it at the next frame
        return recording.result

    # --- the capture thread --------------------------------------------------------------

    def _run(self) -> None:
        encoder.raise_priority()
        try:
            self._source = open_source(self.config)
            self.source_fps = self._source.fps
            self.ensure_encoder()
            self._loop(self._source)
        except SourceError as exc:
            self._fail(str(exc))
        except Exception as exc:  # a capture thread must never die silently
            log.exception("capture %s failed", self.config.name)
            self._fail(f"capture failed: {exc}")
        finally:
            if self._source is not None:
                self._source.close()
                self._source = None
            self._end_recording("the device was closed")

    def _loop(self, source: FrameSource) -> None:
        first = True
        while not self._closing.is_set():
            frame, stamp = source.read()
            self.latest, self.latest_at = frame, time.monotonic()
            if first:  # also after the device was closed (idle) and opened again
                first = False
                height, width = frame.shape[:2]
                self.frame_size = (width, height)
                self.box = crop_box(self.config.crop, height, width)
                self.state = "running"
                self._opened.set()
            self.frames_read += 1
            self._feed(frame, stamp)

    def _feed(self, frame: np.ndarray, stamp: float) -> None:
        recording = self.recording
        if recording is None:
            return
        recording.feed(cropped(frame, self.box), stamp)  # a clip has at least one frame
        if recording.stop_requested:
            recording.end()
        self._drain(recording)

    def _drain(self, recording: Recording) -> None:
        conn = recording.conn
        while conn.poll():
            if recording.on_message(conn.recv()):
                self.last_result = recording.result.result()
                self.recording = None
                self.last_used = time.monotonic()  # idle time counts from the clip's end
                return
        if recording.ending and recording.ring is None:  # ended before any frame
            self.last_result = recording.result.result()
            self.recording = None

    def _end_recording(self, reason: str) -> None:
        recording = self.recording
        if recording is None:
            return
        if not recording.ending:
            recording.end()
        deadline = time.monotonic() + 60
        while not recording.result.done() and time.monotonic() < deadline:
            if recording.conn.poll(0.2):
                recording.on_message(recording.conn.recv())
        recording.fail(reason)
        self.last_result = recording.result.result()
        self.recording = None

    def _fail(self, message: str) -> None:
        log.warning("capture %s: %s", self.config.name, message)
        self.state, self.error = "error", message
        self._opened.set()

    def status(self) -> dict:
        recording = self.recording
        return {
            "name": self.config.name,
            "label": self.config.label,
            "kind": self.config.kind,
            "source": self.config.source,
            "state": self.state,
            "error": self.error,
            "recording": recording.counters() if recording else None,
            "frames_read": self.frames_read,
            "source_lost": self._source.lost if self._source else 0,
            "source_fps": self.source_fps,
            "fps": self.config.fps,
            "frame_size": list(self.frame_size),
            "crop": list(self.box),
            "last": _result_json(self.last_result),
        }


def _result_json(result: ClipResult | None) -> dict | None:
    if result is None:
        return None
    return {
        "accession": result.accession, "frames": result.frames, "dropped": result.dropped,
        "duplicated": result.duplicated, "error": result.error, **result.extra,
    }  # fmt: skip
