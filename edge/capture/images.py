"""Frame pictures: the crop that removes the device's own UI border, the preview with the crop
shown, and the snapshot JPEG (encoded once: baseline, 4:2:2 → ``YBR_FULL_422``)."""

from __future__ import annotations

import cv2
import numpy as np

PREVIEW_WIDTH = 960
SNAPSHOT_QUALITY = 92


def crop_box(crop: tuple[int, ...], height: int, width: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) inside the frame, with even width and height (yuv420p needs them)."""
    x, y, w, h = crop if crop else (0, 0, width, height)
    x, y = min(x, width - 2), min(y, height - 2)
    w, h = min(w, width - x), min(h, height - y)
    return x, y, w - w % 2, h - h % 2


def cropped(frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return frame[y : y + h, x : x + w]


def preview_jpeg(frame: np.ndarray, box: tuple[int, int, int, int]) -> bytes:
    """The whole frame, scaled down, the part outside the crop dimmed and the crop outlined."""
    height, width = frame.shape[:2]
    scale = min(1.0, PREVIEW_WIDTH / width)
    small = cv2.resize(frame, (round(width * scale), round(height * scale)),
                       interpolation=cv2.INTER_AREA)  # fmt: skip
    x, y, w, h = (round(v * scale) for v in box)
    shown = (small // 3).astype(np.uint8)
    shown[y : y + h, x : x + w] = small[y : y + h, x : x + w]
    cv2.rectangle(shown, (x, y), (x + w - 1, y + h - 1), (0, 200, 255), 2)
    ok, data = cv2.imencode(".jpg", shown, [cv2.IMWRITE_JPEG_QUALITY, 70])
    if not ok:
        raise ValueError("preview cannot be encoded")
    return data.tobytes()


def snapshot_jpeg(frame: np.ndarray) -> bytes:
    params = [
        cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_QUALITY,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    ]  # fmt: skip
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame), params)
    if not ok:
        raise ValueError("snapshot cannot be encoded")
    return data.tobytes()
