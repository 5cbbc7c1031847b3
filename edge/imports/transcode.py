"""Video that cannot be wrapped unchanged → H.264 High Profile Level 4.1, yuv420p, constant
frame rate (run in a worker process: it is CPU work). Audio is not kept in the DICOM object
(the original file, kept beside it, still has it).

Level 4.1 limits (H.264 Table A-1): at most 8192 macroblocks a frame and 245 760 a second;
larger pictures are scaled down to fit 1920×1080, higher rates lowered to what the level allows.
"""

from __future__ import annotations

import math
from fractions import Fraction

MAX_FRAME_MBS = 8192
MAX_MBS_PER_SECOND = 245_760


def output_geometry(width: int, height: int, fps: float) -> tuple[int, int, Fraction]:
    scale = min(1.0, 1920 / width, 1080 / height)
    if (width / 16) * (height / 16) * scale * scale > MAX_FRAME_MBS:
        scale = math.sqrt(MAX_FRAME_MBS * 256 / (width * height))
    w, h = int(width * scale) // 2 * 2, int(height * scale) // 2 * 2
    macroblocks = math.ceil(w / 16) * math.ceil(h / 16)
    rate = Fraction(fps).limit_denominator(1001)
    if rate * macroblocks > MAX_MBS_PER_SECOND:
        rate = Fraction(MAX_MBS_PER_SECOND // macroblocks)
    return w, h, rate


def transcode(source: str, target: str, fps: float) -> int:
    """Re-encode ``source`` to ``target`` (MP4); returns the frames written."""
    import av

    from mekong.edge.capture.cfr import CfrClock

    with av.open(source) as inp, av.open(target, "w") as out:
        vin = inp.streams.video[0]
        width, height, rate = output_geometry(vin.codec_context.width,
                                              vin.codec_context.height, fps)  # fmt: skip
        stream = out.add_stream("libx264", rate=rate, options={
            "preset": "veryfast", "crf": "20", "profile": "high", "level": "4.1",
            "x264-params": "8x8dct=1:vbv-maxrate=50000:vbv-bufsize=50000",
        })  # fmt: skip
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        clock, count, last = CfrClock(float(rate)), 0, None
        for frame in inp.decode(vin):
            stamp = float(frame.time) if frame.time is not None else count / float(rate)
            placement = clock.place(stamp)
            if not placement.take:
                continue
            picture = frame.reformat(width, height, "yuv420p")
            for _ in range(placement.duplicates if last is not None else 0):
                count = _encode(out, stream, last, count)
            count = _encode(out, stream, picture, count)
            last = picture
        for packet in stream.encode():
            out.mux(packet)
    return count


def _encode(out, stream, picture, count: int) -> int:  # type: ignore[no-untyped-def]
    import av

    frame = av.VideoFrame.from_ndarray(picture.to_ndarray(), format="yuv420p")
    frame.pts = count
    for packet in stream.encode(frame):
        out.mux(packet)
    return count + 1


__all__ = ["output_geometry", "transcode"]
