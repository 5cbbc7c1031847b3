"""Frame sources: V4L2 grabbers, RTSP/HTTP streams, and video files played as a live device.

Every frame comes with the device's timestamp (seconds). A live source gives the driver's or
stream's time when OpenCV knows it, else the arrival time. A file is played in real time and
loops: frame k is due at ``start + k / rate`` and stamped so; when the reader falls more than
``buffers`` frames behind, the frames a real device would have overwritten are skipped (the
clip then shows them as duplicated), exactly as a grabber's driver queue behaves.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from mekong.shared.config import CaptureDeviceConfig


class SourceError(RuntimeError):
    """The source cannot be opened or stopped giving frames."""


class FrameSource(Protocol):
    fps: float
    lost: int  # frames the device had to discard because the reader was late

    def read(self) -> tuple[np.ndarray, float]: ...
    def close(self) -> None: ...


def open_source(device: CaptureDeviceConfig) -> FrameSource:
    """Open the device's source as a live device or a paced file."""
    where = device.source
    if where.startswith("/dev/video") or "://" in where or where.isdigit():
        return LiveSource(where, device)
    if not Path(where).is_file():
        raise SourceError(f"no such capture device or file: {where}")
    return FileSource(where)


def _capture(where: str, api: int = cv2.CAP_ANY) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(int(where) if where.isdigit() else where, api)
    if not capture.isOpened():
        raise SourceError(f"cannot open {where}")
    return capture


class FileSource:
    """A video file played at its own rate, looping, as a live device would deliver it."""

    def __init__(self, path: str, buffers: int = 4) -> None:
        self.capture = _capture(path, cv2.CAP_FFMPEG)
        self.path = path
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 30.0
        self.buffers = buffers
        self.lost = 0
        self._index = 0
        self._start = time.monotonic()

    def read(self) -> tuple[np.ndarray, float]:
        while True:
            due = self._start + self._index / self.fps
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not self._grab():
                raise SourceError(f"{self.path} gives no frames")
            self._index += 1
            if time.monotonic() - due > self.buffers / self.fps:
                self.lost += 1  # a device's queue would have overwritten it
                continue
            ok, frame = self.capture.retrieve()
            if not ok:
                raise SourceError(f"{self.path}: a frame cannot be decoded")
            return frame, due

    def _grab(self) -> bool:
        if self.capture.grab():
            return True
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)  # loop
        return bool(self.capture.grab())

    def close(self) -> None:
        self.capture.release()


class LiveSource:
    """A V4L2 device or a network stream through OpenCV."""

    def __init__(self, where: str, device: CaptureDeviceConfig) -> None:
        api = cv2.CAP_V4L2 if where.startswith("/dev/video") else cv2.CAP_FFMPEG
        self.capture = _capture(where, api)
        if device.width and device.height:
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, device.width)
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, device.height)
        self.capture.set(cv2.CAP_PROP_FPS, device.fps)
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or device.fps
        self.where = where
        self.lost = 0
        self._last = -1.0

    def read(self) -> tuple[np.ndarray, float]:
        ok, frame = self.capture.read()
        if not ok:
            raise SourceError(f"{self.where} stopped giving frames")
        stamp = self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
        if stamp <= self._last:  # unknown or not increasing: the arrival time
            stamp = time.monotonic()
        self._last = stamp
        return frame, stamp

    def close(self) -> None:
        self.capture.release()
