"""Video objects (MPEG-2 / MPEG-4 / HEVC in Pixel Data): the stream and a still from it."""

from __future__ import annotations

import io
from pathlib import Path

import av

from mekong.shared.dicom.pixeldata import pixel_layout, read_ranges
from mekong.shared.dicom.render import RenderOptions, encode_image


def video_stream(path: Path) -> bytes:
    """The encapsulated stream (an MP4 / MPEG-TS file) as stored, fragments joined."""
    return read_ranges(path, pixel_layout(path).whole_value())


def first_video_frame(path: Path, options: RenderOptions) -> bytes:
    """The first decodable picture of a stored video, encoded as a still image."""
    with av.open(io.BytesIO(video_stream(path))) as container:
        for frame in container.decode(video=0):
            return encode_image(frame.to_ndarray(format="rgb24"), options)
    raise ValueError("the video holds no decodable picture")
