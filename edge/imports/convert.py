"""What a non-DICOM file becomes (RIS-6.8, FEAT-2.3), told by its content, not its name:

- JPEG → Secondary Capture, the JPEG wrapped unchanged as JPEG Baseline (re-encoded once only
  when it is not baseline/extended 8-bit: progressive, 12-bit, CMYK);
- PNG → Secondary Capture, native pixels;
- PDF → Encapsulated PDF;
- MP4/MOV → the device kind's video object, wrapped unchanged when it is already H.264 High
  ≤ Level 4.1 yuv420p without audio, else transcoded (:mod:`.transcode`).
"""

from __future__ import annotations

from mekong.edge.dicomize.common import Origin
from mekong.edge.dicomize.kinds import kind_of

MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "pdf": "application/pdf",
               "mp4": "video/mp4"}  # fmt: skip
SERIES = {"jpeg": ("import image", 11), "png": ("import image", 11),
          "pdf": ("import document", 13), "mp4": ("import video", 12)}  # fmt: skip


class NotConvertible(ValueError):
    """The file is not one Mekong converts, or is damaged; the message says which."""


def sniff(head: bytes) -> str:
    """jpeg | png | pdf | mp4, from the first bytes."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head[4:8] == b"ftyp":
        return "mp4"
    raise NotConvertible("not a JPEG, PNG, PDF or MP4 file (its first bytes are none of theirs)")


def origin(media: str, device: str, device_kind: str, modality: str = "") -> Origin:
    label, number = SERIES[media]
    chosen = kind_of(device_kind)
    if media in ("jpeg", "png"):
        modality = modality or ("OT" if device_kind == "other" else chosen.modality)
    elif media == "pdf":
        modality = modality or "DOC"
    else:
        modality = modality or chosen.modality
    return Origin(device=device or "upload", modality=modality, series_label=label,
                  series_number=number, series_description=f"{device or 'upload'} – {label}",
                  conversion_type="WSD")  # fmt: skip
