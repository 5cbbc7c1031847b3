"""A synthetic capture source: FFmpeg ``testsrc2`` at 1080p30 with each frame's number burnt in,
as text (``drawtext``, when a font is installed) and as a 16-bit bar code that survives lossy
coding, so a test can read which source frame every recorded frame is.

    python -m tools.capture_source OUT.mp4 [--seconds 20] [--size 1920x1080] [--fps 30]
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np

BITS = 16
BAR_X, BAR_Y, BAR_W, BAR_H = 160, 500, 100, 40  # bit b: x = BAR_X + b * BAR_W


def _filters(text: bool) -> str:
    boxes = [f"drawbox=x={BAR_X}:y={BAR_Y}:w={BITS * BAR_W}:h={BAR_H}:color=black:t=fill"]
    boxes += [
        f"drawbox=x={BAR_X + b * BAR_W}:y={BAR_Y}:w={BAR_W}:h={BAR_H}:color=white:t=fill:"
        f"enable='mod(floor(n/{2**b}),2)'"
        for b in range(BITS)
    ]
    if text:
        boxes.append("drawtext=text='%{n}':fontsize=72:x=200:y=380:fontcolor=white:box=1")
    return ",".join(boxes)


def make_source(out: Path, seconds: float = 20, size: str = "1920x1080", fps: int = 30) -> Path:
    """Write the MP4 (H.264, yuv420p, ultrafast); drawtext is left out if it fails."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for text in (True, False):
        command = [
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
            "-vf", _filters(text), "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuv420p", str(out),
        ]  # fmt: skip
        if subprocess.run(command, capture_output=True).returncode == 0:
            return out
    raise RuntimeError("ffmpeg cannot make the test source")


def frame_number(rgb: np.ndarray, dx: int = 0, dy: int = 0) -> int:
    """The bar code of a decoded frame (RGB or BGR, cropped by ``dx``, ``dy``)."""
    y = BAR_Y - dy + BAR_H // 2
    number = 0
    for b in range(BITS):
        x = BAR_X - dx + b * BAR_W + BAR_W // 2
        if rgb[y - 8 : y + 8, x - 20 : x + 20].mean() > 128:
            number |= 1 << b
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args(argv)
    print(make_source(args.out, args.seconds, args.size, args.fps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
