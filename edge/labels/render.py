"""The printed label of an order (RIS-3.3, FEAT-5.3): 50 × 30 mm, PNG and PDF.

Left: the QR code (the order's 8-digit key only, numeric mode, error correction M, a quiet
zone of 2 modules) with the key under it in human-readable form (``1234 5678``). Right: the
accession number, the patient's name, the birth year and the service, each shrunk (down to
5 pt) to fit its line, the name and the service on up to two lines.

One layout, two painters: the PNG is drawn with Pillow at 12 dots/mm (304.8 dpi, so the PNG's
600 × 360 pixels are exactly 50 × 30 mm at its stated resolution), the PDF with fpdf2 (vector
QR modules, real text in an embedded subset of DejaVu Sans, so a PDF reader finds the name and
a label printer prints it sharp at any resolution). DejaVu Sans has every Vietnamese letter
(Debian ``fonts-dejavu-core``); text is NFC-normalised first so each letter is one glyph.
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import qrcode
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from mekong.shared.ris import labels
from mekong.shared.ris.labels import LabelData

WIDTH_MM, HEIGHT_MM = 50.0, 30.0
DOTS_PER_MM = 12  # PNG resolution: 304.8 dpi
MM_PER_PT = 25.4 / 72
_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
_QR_X, _QR_Y, _QR_SIZE = 1.0, 1.0, 22.0  # mm, quiet zone included
_TEXT_X, _TEXT_RIGHT = 24.0, 49.0
_MIN_PT = 5.0


class FontMissing(RuntimeError):
    """The label font is not installed (Debian package fonts-dejavu-core)."""


@dataclass(frozen=True)
class Text:
    x: float  # mm, left
    y: float  # mm, baseline
    pt: float
    bold: bool
    text: str


@dataclass(frozen=True)
class Layout:
    modules: list[tuple[int, int]]  # dark QR modules (column, row)
    module_mm: float
    texts: list[Text]


def font_path(bold: bool = False) -> Path:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in _FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise FontMissing(f"{name} not found: install the Debian package fonts-dejavu-core")


@cache
def _pil_font(bold: bool, pt: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(bold)), pt * MM_PER_PT * DOTS_PER_MM)


def text_mm(text: str, pt: float, bold: bool) -> float:
    """The advance width of ``text`` in mm at ``pt`` points."""
    return float(_pil_font(bold, pt).getlength(text)) / DOTS_PER_MM


def layout(data: LabelData) -> Layout:
    """Where everything goes, in mm from the top-left corner."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    code.add_data(data.key)
    code.make(fit=True)
    matrix = code.get_matrix()
    module = _QR_SIZE / len(matrix)
    dark = [(c, r) for r, row in enumerate(matrix) for c, on in enumerate(row) if on]
    texts = [_centered(labels.display(data.key), 9.0, True, _QR_X, _QR_X + _QR_SIZE, 27.5)]
    width = _TEXT_RIGHT - _TEXT_X
    y = 4.5
    for value, pt, bold, lines in (
        (data.accession, 9.0, True, 1),
        (_person(data.patient_name), 8.0, True, 2),
        (data.birth_year, 8.0, False, 1),
        (_nfc(data.service), 7.0, False, 2),
    ):
        for line, size in _fit(value, pt, bold, width, lines):
            texts.append(Text(_TEXT_X, y, size, bold, line))
            y += size * MM_PER_PT * 1.25
        y += 0.8
    return Layout(dark, module, texts)


def png(data: LabelData) -> bytes:
    """The label as a PNG, 600 × 360 pixels at 304.8 dpi (50 × 30 mm)."""
    found = layout(data)
    size = (round(WIDTH_MM * DOTS_PER_MM), round(HEIGHT_MM * DOTS_PER_MM))
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for c, r in found.modules:
        x0 = round((_QR_X + c * found.module_mm) * DOTS_PER_MM)
        y0 = round((_QR_Y + r * found.module_mm) * DOTS_PER_MM)
        x1 = round((_QR_X + (c + 1) * found.module_mm) * DOTS_PER_MM)
        y1 = round((_QR_Y + (r + 1) * found.module_mm) * DOTS_PER_MM)
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=0)
    for t in found.texts:
        draw.text((t.x * DOTS_PER_MM, t.y * DOTS_PER_MM), t.text, fill=0,
                  font=_pil_font(t.bold, t.pt), anchor="ls")  # fmt: skip
    out = io.BytesIO()
    dpi = DOTS_PER_MM * 25.4
    image.save(out, "PNG", dpi=(dpi, dpi), optimize=True)
    return out.getvalue()


def pdf(data: LabelData) -> bytes:
    """The label as a one-page PDF of 50 × 30 mm: vector QR code, text in DejaVu Sans."""
    found = layout(data)
    doc = FPDF(orientation="L", unit="mm", format=(HEIGHT_MM, WIDTH_MM))
    doc.set_auto_page_break(False)
    doc.set_margins(0, 0, 0)
    doc.set_creator("Mekong")
    doc.set_title(f"{data.accession} {_person(data.patient_name)}")
    doc.add_font("DejaVu", "", str(font_path(False)))
    doc.add_font("DejaVu", "B", str(font_path(True)))
    doc.add_page()
    doc.set_fill_color(0, 0, 0)
    for c, r in found.modules:
        doc.rect(_QR_X + c * found.module_mm, _QR_Y + r * found.module_mm, found.module_mm,
                 found.module_mm, style="F")  # fmt: skip
    for t in found.texts:
        doc.set_font("DejaVu", "B" if t.bold else "", t.pt)
        doc.text(t.x, t.y, t.text)
    return bytes(doc.output())


def _centered(text: str, pt: float, bold: bool, left: float, right: float, y: float) -> Text:
    size = pt
    while size > _MIN_PT and text_mm(text, size, bold) > right - left:
        size -= 0.5
    return Text(left + (right - left - text_mm(text, size, bold)) / 2, y, size, bold, text)


def _fit(text: str, pt: float, bold: bool, width: float, lines: int) -> list[tuple[str, float]]:
    """``text`` on at most ``lines`` lines of ``width`` mm, shrinking the size if needed;
    at the smallest size what still does not fit is cut with an ellipsis."""
    if not text:
        return []
    size = pt
    while True:
        wrapped = _wrap(text, size, bold, width)
        fits = all(text_mm(line, size, bold) <= width for line in wrapped)
        if (len(wrapped) <= lines and fits) or size <= _MIN_PT:
            break
        size -= 0.5
    wrapped = wrapped[:lines]
    last = wrapped[-1]
    while text_mm(last, size, bold) > width and len(last) > 1:
        last = last[:-2] + "…"
    wrapped[-1] = last
    return [(line, size) for line in wrapped]


def _wrap(text: str, pt: float, bold: bool, width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and text_mm(candidate, pt, bold) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text or "")


def _person(name: str) -> str:
    """A DICOM PN as people write it: 'Nguyễn^Thị Hồng Nhung' → 'Nguyễn Thị Hồng Nhung'."""
    return " ".join(_nfc(name).replace("=", " ").replace("^", " ").split())
