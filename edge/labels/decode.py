"""Reading a QR label out of a picture (FEAT-5.3/5.4): an uploaded image, a capture frame.

pyzbar (ZBar, Debian ``libzbar0``) first: fast, finds small or tilted codes; OpenCV's
``QRCodeDetector`` when ZBar is not installed or finds nothing. Only a valid label key (8 digits,
Damm check digit right) counts: any other QR code or barcode in the picture is ignored.
"""

from __future__ import annotations

import io
import logging

import cv2
import numpy as np
from PIL import Image

from mekong.shared.ris import labels

log = logging.getLogger(__name__)

try:
    from pyzbar import pyzbar
except (ImportError, OSError):  # the Python package, or libzbar0, is missing
    pyzbar = None
    log.warning("pyzbar/libzbar0 not available: QR labels are read with OpenCV only")


def keys_in(gray: np.ndarray) -> list[str]:
    """Valid label keys in an 8-bit grayscale picture, in the order found."""
    found: list[str] = []
    for text in _zbar(gray) or _opencv(gray):
        key = labels.normalize(text)
        if labels.is_valid(key) and key not in found:
            found.append(key)
    return found


def key_in_frame(frame: np.ndarray) -> str:
    """The first label key in a BGR (or grayscale) frame, or ""."""
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return next(iter(keys_in(np.ascontiguousarray(gray))), "")


def key_in_image(data: bytes) -> str:
    """The first label key in an encoded picture (JPEG, PNG), or "" (also for one that
    cannot be decoded: the caller's own conversion reports that)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            gray = np.asarray(image.convert("L"))
    except (OSError, ValueError, Image.DecompressionBombError):
        return ""
    return next(iter(keys_in(gray)), "")


def _zbar(gray: np.ndarray) -> list[str]:
    if pyzbar is None:
        return []
    symbols = pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.QRCODE])
    return [s.data.decode("ascii", "replace") for s in symbols]


def _opencv(gray: np.ndarray) -> list[str]:
    detector = cv2.QRCodeDetector()
    try:
        ok, texts, _, _ = detector.detectAndDecodeMulti(gray)
    except cv2.error:
        return []
    return [t for t in texts if t] if ok else []
