"""QR codes as inline SVG (no image request, nothing inline for CSP to refuse)."""

from __future__ import annotations

import qrcode
from qrcode.image.svg import SvgPathImage


def svg(text: str) -> str:
    image = qrcode.make(text, image_factory=SvgPathImage, border=2)
    return str(image.to_string(encoding="unicode"))
