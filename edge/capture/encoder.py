"""The H.264 encoder process: frames from shared memory → MP4 on disk (RIS-6.7, FEAT-2.1).

Runs in its own process (``spawn``), so encoding never stalls the node's event loop or the
capture thread; one per open device, reused clip after clip. Output: H.264 High Profile,
Level 4.1, yuv420p (BT.601, limited range, as ``YBR_PARTIAL_420`` says), constant frame
rate, a key frame every 2 s, written straight to disk by the MP4 muxer — behind the Part 10
header the capture side wrote first, so the file is the DICOM object once the clip ends.

Messages (``multiprocessing.Pipe``), capture thread → encoder: ``("begin", ClipSpec)``,
``("frame", slot)``, ``("repeat",)``, ``("end",)``, ``("quit",)``; encoder → capture thread:
``("free", slot)`` and ``("done", frames, error)``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing.connection import Connection
from typing import Any

LEVEL_41_MAX_KBPS = 50_000  # kept under High@4.1's 62.5 Mbit/s


@dataclass(frozen=True)
class ClipSpec:
    path: str
    ring: str  # shared memory name
    shape: tuple[int, int, int, int]  # slots, height, width, 3
    fps: float
    preset: str = "ultrafast"
    crf: int = 23
    offset: int = 0  # the MP4 starts here: the Part 10 header is written before it


def x264_options(spec: ClipSpec) -> dict[str, str]:
    """libx264 settings; 8x8 transforms on so even ``ultrafast`` is High Profile."""
    keyint = max(1, round(spec.fps * 2))
    params = (
        f"8x8dct=1:keyint={keyint}:vbv-maxrate={LEVEL_41_MAX_KBPS}:"
        f"vbv-bufsize={LEVEL_41_MAX_KBPS}:colorprim=smpte170m:transfer=smpte170m:"
        f"colormatrix=smpte170m:range=tv"
    )
    return {"preset": spec.preset, "crf": str(spec.crf), "profile": "high", "level": "4.1",
            "x264-params": params}  # fmt: skip


def raise_priority(step: int = -5) -> None:
    """Best effort: run the calling process (Linux: thread) before ordinary work, so a busy
    machine delays the web console rather than the video. Needs CAP_SYS_NICE (root, or the
    systemd unit's Nice=/AmbientCapabilities=); without it nothing changes."""
    import os
    import threading

    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), step)


def start_encoder() -> tuple[multiprocessing.process.BaseProcess, Connection]:
    """Spawn an encoder process; returns it and the capture side of its pipe."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=run, args=(theirs,), name="mekong-encoder", daemon=True)
    process.start()
    theirs.close()
    return process, ours


def run(conn: Connection) -> None:
    """The encoder process's loop."""
    raise_priority()
    import av  # noqa: F401  imported before the first clip, so it starts without a delay
    import cv2  # noqa: F401

    clip: _Clip | None = None
    while True:
        try:
            message = conn.recv()
        except EOFError:
            break
        kind = message[0]
        if kind == "quit":
            break
        if kind == "begin":
            clip = _Clip(message[1], conn)
        elif clip is not None:
            if kind == "end":
                conn.send(("done", clip.finish(), clip.error))
                clip = None
            else:
                clip.handle(message)
    if clip is not None:
        clip.finish()


class _Clip:
    def __init__(self, spec: ClipSpec, conn: Connection) -> None:
        import av

        from mekong.edge.capture.ring import attach
        from mekong.edge.dicomize.video import OffsetFile

        self.conn = conn
        self.error = ""
        self.count = 0
        self.last: Any = None
        self.memory, self.frames = attach(spec.ring, spec.shape)
        target = OffsetFile(open(spec.path, "r+b"), spec.offset)  # noqa: SIM115 - muxer closes
        self.container = av.open(target, "w", format="mp4")
        rate = Fraction(spec.fps).limit_denominator(1001)
        self.stream = self.container.add_stream("libx264", rate=rate, options=x264_options(spec))
        self.stream.width, self.stream.height = spec.shape[2], spec.shape[1]
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = 1 / rate

    def handle(self, message: tuple) -> None:
        import cv2

        if message[0] == "frame":
            slot = message[1]
            self.last = cv2.cvtColor(self.frames[slot], cv2.COLOR_BGR2YUV_I420)
            self.conn.send(("free", slot))
        if self.last is not None and not self.error:
            self._encode(self.last)

    def _encode(self, i420: Any) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(i420, format="yuv420p")
        frame.pts = self.count
        try:
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.count += 1
        except (av.FFmpegError, OSError) as exc:
            self.error = f"encoding failed: {exc}"

    def finish(self) -> int:
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
        except Exception as exc:  # disk full, …: reported, the clip is not stored
            self.error = self.error or f"finishing the MP4 failed: {exc}"
        del self.frames
        self.memory.close()
        return self.count
