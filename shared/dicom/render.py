"""Stored frames to consumer images (JPEG / PNG) for /rendered, /thumbnail and WADO-URI.

Grey images go through the Modality LUT (rescale), then a linear VOI window: the one asked for,
else the stored Window Center/Width, else the frame's own range; MONOCHROME1 is inverted.
Colour images are converted to RGB (pydicom does YBR → RGB) and only scaled.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, pixel_array

FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}


@dataclass(frozen=True)
class RenderOptions:
    media_type: str = "image/jpeg"
    viewport: tuple[int, int] | None = None  # fit inside (width, height), keeping the aspect
    window: tuple[float, float] | None = None  # (center, width), linear
    quality: int = 90


def render_frame(path: Path, frame: int, options: RenderOptions) -> bytes:
    """Frame ``frame`` (from 0) of a stored instance as ``options.media_type`` bytes."""
    header = pydicom.dcmread(path, stop_before_pixels=True)
    pixels = pixel_array(path, index=frame)
    return encode_image(to_8bit(pixels, header, options.window), options)


def encode_image(image: np.ndarray, options: RenderOptions) -> bytes:
    picture = Image.fromarray(image)
    if options.viewport:
        picture.thumbnail(options.viewport, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    kind = FORMATS[options.media_type]
    if kind == "JPEG":
        picture.save(buffer, kind, quality=options.quality)
    else:
        picture.save(buffer, kind)
    return buffer.getvalue()


def to_8bit(pixels: np.ndarray, header: Dataset, window: tuple[float, float] | None) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):  # colour
        return _stretch(pixels, *_range(pixels)) if pixels.dtype != np.uint8 else pixels
    values = apply_modality_lut(pixels, header).astype(np.float64)
    low, high = _window(header, window) or _range(values)
    grey = _stretch(values, low, high)
    if header.get("PhotometricInterpretation") == "MONOCHROME1":
        grey = 255 - grey
    return grey


def _window(header: Dataset, asked: tuple[float, float] | None) -> tuple[float, float] | None:
    center, width = asked or (_first(header.get("WindowCenter")), _first(header.get("WindowWidth")))
    if center is None or width is None or width < 1:
        return None
    return center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2


def _first(value: object) -> float | None:
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if value else None
    if value is None or value == "":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _range(values: np.ndarray) -> tuple[float, float]:
    return float(values.min()), float(values.max())


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    span = max(high - low, 1e-6)
    return (np.clip((values - low) / span, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
