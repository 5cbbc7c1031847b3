"""Stills: a captured frame or an imported JPEG/PNG as VL Endoscopic Image, US Image or
Secondary Capture (RIS-6.7, RIS-6.8, FEAT-2.3).

A JPEG is wrapped unchanged as JPEG Baseline (``1.2.840.10008.1.2.4.50``) when it is baseline
or extended 8-bit with 1 or 3 components (its bytes are the pixel data; no re-encode); any
other JPEG (progressive, 12-bit, CMYK) is decoded and encoded once as baseline. A PNG becomes
native pixels (Explicit VR Little Endian): RGB, or MONOCHROME2 8/16-bit for grey images.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pydicom import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    SecondaryCaptureImageStorage,
    VLEndoscopicImageStorage,
)

from mekong.edge.dicomize.common import Origin, anatomic_region, base_dataset, sc_equipment
from mekong.edge.dicomize.jpeg import JpegInfo, NotJpeg, jpeg_info
from mekong.edge.orders import OrderContext


class NotAnImage(ValueError):
    """The bytes cannot be read as the image type they claim to be."""


def jpeg_object(ctx: OrderContext, jpeg: bytes, sop_class: str, origin: Origin) -> Dataset:
    """A JPEG as ``sop_class`` (SC, VL Endoscopic or US Image), wrapped unchanged if possible."""
    try:
        info = jpeg_info(jpeg)
    except NotJpeg as exc:
        raise NotAnImage(str(exc)) from None
    if not info.wrappable:
        jpeg, info = baseline_from(jpeg), None  # type: ignore[assignment]
        info = jpeg_info(jpeg)
    ds = base_dataset(ctx, sop_class, origin, JPEGBaseline8Bit)
    _pixel_module(ds, info.rows, info.columns, info.components, 8, info.photometric)
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    _class_modules(ds, sop_class, origin)
    ds.PixelData = encapsulate([jpeg], has_bot=False)
    ds["PixelData"].VR = "OB"
    return ds


def png_object(ctx: OrderContext, png: bytes, origin: Origin) -> Dataset:
    """A PNG as Secondary Capture with native pixels (lossless; alpha dropped)."""
    image = _open(png, "PNG")
    pixels, photometric, bits = _native(image)
    ds = base_dataset(ctx, SecondaryCaptureImageStorage, origin, ExplicitVRLittleEndian)
    samples = 3 if photometric == "RGB" else 1
    _pixel_module(ds, image.height, image.width, samples, bits, photometric)
    _class_modules(ds, SecondaryCaptureImageStorage, origin)
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW" if bits == 16 else "OB"
    return ds


def baseline_from(data: bytes, quality: int = 95) -> bytes:
    """Decode any image Pillow reads and encode it once as 8-bit baseline JPEG, 4:2:2."""
    image = _open(data, None)
    rgb = image.convert("L" if image.mode in ("L", "I;16", "I") else "RGB")
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=quality, subsampling="4:2:2", progressive=False)
    return out.getvalue()


def _open(data: bytes, expected: str | None) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # Pillow raises many kinds for damaged files
        raise NotAnImage(f"the image cannot be decoded: {exc}") from None
    if expected and image.format != expected:
        raise NotAnImage(f"not a {expected} file (looks like {image.format})")
    return image


def _native(image: Image.Image) -> tuple[np.ndarray, str, int]:
    if image.mode in ("I;16", "I;16B", "I"):
        return np.asarray(image).astype("<u2"), "MONOCHROME2", 16
    if image.mode in ("L", "1"):
        return np.asarray(image.convert("L")), "MONOCHROME2", 8
    return np.asarray(image.convert("RGB")), "RGB", 8


def _pixel_module(
    ds: Dataset, rows: int, columns: int, samples: int, bits: int, photometric: str
) -> None:
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 0
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.PatientOrientation = ""


def _class_modules(ds: Dataset, sop_class: str, origin: Origin) -> None:
    """What each IOD needs beyond the common modules."""
    ds.ImageType = ["DERIVED", "SECONDARY"] if sop_class == SecondaryCaptureImageStorage else [
        "ORIGINAL", "PRIMARY"]  # fmt: skip
    if sop_class != VLEndoscopicImageStorage:
        ds.Laterality = ""  # 2C: body part unknown (with a coded region it must be absent)
    if sop_class == SecondaryCaptureImageStorage:
        sc_equipment(ds, origin)
        return
    if "LossyImageCompression" not in ds:
        ds.LossyImageCompression = "00"
    if sop_class == VLEndoscopicImageStorage:
        ds.AcquisitionContextSequence = []
        anatomic_region(ds, origin)


__all__ = ["JpegInfo", "NotAnImage", "baseline_from", "jpeg_object", "png_object"]
