"""Deterministic synthetic DICOM test data for Mekong.

Library (from the repo root)::

    from tools.gendata import ct_series, decoded_pixels
    paths = ct_series(tmp_path, count=5)

CLI::

    python tools/gendata.py OUTDIR --ct 10 --cr --us --j2k --jls --vietnamese \
        --truncated --no-sop-uid [--seed 0]

With no kind flag, one of everything is written (CT series of 10).
The same arguments and seed always give byte-identical files.

dciodvfy: CT, CR, US, Vietnamese, J2K and JPEG-LS files give no errors and no
warnings. Only no_sop_uid.dcm has errors, on purpose: missing Type 1
MediaStorageSOPInstanceUID and SOPInstanceUID.
"""

from __future__ import annotations

import argparse
import tempfile
import unicodedata
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    MPEG4HP41,
    PYDICOM_IMPLEMENTATION_UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    EncapsulatedPDFStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    UltrasoundMultiFrameImageStorage,
    VideoEndoscopicImageStorage,
    generate_uid,
)

STUDY_DATE = "20240115"
STUDY_TIME = "093000"
CT_PIXEL_SPACING = 0.5  # mm; exact in binary, so positions format cleanly
CT_SLICE_THICKNESS = 2.5
VIETNAMESE_NAME = unicodedata.normalize("NFC", "Nguyễn^Thị Hồng Nhung")
VIETNAMESE_STUDY = unicodedata.normalize("NFC", "Chụp CT sọ não")
VIETNAMESE_SERIES = unicodedata.normalize("NFC", "CT sọ não không cản quang")
VIETNAMESE_REFERRER = unicodedata.normalize("NFC", "Trần^Văn Minh")
PIXEL_DATA = 0x7FE00010
FRAME_TIME = 0x00181063


def uid(seed: int, *parts: object) -> str:
    """Deterministic UID (pydicom root) derived from `seed` and `parts`."""
    return generate_uid(entropy_srcs=[f"mekong-gendata|{p}" for p in (seed, *parts)])


@lru_cache(maxsize=4)
def _ct_geometry(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Squared normalised radius, and tissue HU (gradient + central "bone")."""
    y, x = np.ogrid[:rows, :cols]
    r2 = ((2 * y - rows) / rows) ** 2 + ((2 * x - cols) / cols) ** 2
    tissue = 40 + (300 * x) // cols + 800 * (r2 < 0.05)
    return r2.astype(np.float32), tissue.astype(np.int16)


def ct_pixels(
    rows: int = 512, cols: int = 512, index: int = 0, seed: int = 0, signed: bool = True
) -> np.ndarray:
    """Stored values of CT slice `index`: a noisy disc on air, size varying by slice.

    Signed data is stored in HU (intercept 0); unsigned is HU + 1024.
    """
    r2, tissue = _ct_geometry(rows, cols)
    radius2 = (0.6 + 0.3 * np.sin(index / 10)) ** 2
    hu = np.where(r2 < radius2, tissue, np.int16(-1000))
    rng = np.random.default_rng([seed, index])
    hu += rng.integers(-20, 21, (rows, cols), dtype=np.int16)
    return hu if signed else (hu + 1024).astype(np.uint16)


def decoded_pixels(path: str | Path) -> bytes:
    """Decode any file's pixel data to raw native little-endian bytes."""
    arr = dcmread(path).pixel_array
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def _base(
    sop_class: str,
    modality: str,
    patient_name: str,
    patient_id: str,
    study_uid: str | None,
    seed: int,
    series_number: int = 1,
) -> Dataset:
    """Patient, study, series, equipment and SOP common attributes."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid or uid(seed, patient_id, "study")
    ds.SeriesInstanceUID = uid(seed, ds.StudyInstanceUID, modality, series_number)
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = STUDY_DATE
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = STUDY_TIME
    ds.AccessionNumber = "A" + ds.StudyInstanceUID[-15:]
    ds.StudyID = "1"
    ds.ReferringPhysicianName = "REFERRER^TEST"
    ds.StudyDescription = f"Synthetic {modality} study"
    ds.SeriesDescription = f"Synthetic {modality} series {series_number}"
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.InstanceNumber = 1
    ds.Manufacturer = "Mekong Synthetic"
    ds.InstitutionName = "Mekong Test Hospital"
    return ds


def _write(ds: Dataset, path: Path, sop_uid: str) -> Path:
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    dcmwrite(path, ds, enforce_file_format=True)
    return path


def _mkdir(out: str | Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _ct_base(
    rows: int,
    cols: int,
    patient_name: str,
    patient_id: str,
    study_uid: str | None,
    seed: int,
    series_number: int = 1,
    signed: bool = True,
) -> Dataset:
    """A CT dataset without per-instance fields (UID, number, position, pixels)."""
    ds = _base(CTImageStorage, "CT", patient_name, patient_id, study_uid, seed, series_number)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.BodyPartExamined = "HEAD"
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = uid(seed, ds.SeriesInstanceUID, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.AcquisitionNumber = 1
    ds.KVP = 120
    ds.SliceThickness = CT_SLICE_THICKNESS
    ds.PixelSpacing = [CT_PIXEL_SPACING, CT_PIXEL_SPACING]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.RescaleIntercept = 0 if signed else -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = int(signed)
    return ds


def _ct_slice(ds: Dataset, n: int, seed: int, signed: bool = True) -> None:
    """Set the per-instance fields of CT slice number `n` (1-based)."""
    z = -CT_SLICE_THICKNESS * (n - 1)
    ds.InstanceNumber = n
    ds.ImagePositionPatient = [
        -CT_PIXEL_SPACING * ds.Columns / 2,
        -CT_PIXEL_SPACING * ds.Rows / 2,
        z,
    ]
    ds.SliceLocation = z
    ds.PixelData = ct_pixels(ds.Rows, ds.Columns, n - 1, seed, signed).tobytes()


def ct_series(
    out: str | Path,
    count: int = 10,
    rows: int = 512,
    cols: int = 512,
    patient_name: str = "TEST^CT",
    patient_id: str = "CT001",
    study_uid: str | None = None,
    seed: int = 0,
    *,
    series_number: int = 1,
    signed: bool = True,
) -> list[Path]:
    """One CT series of `count` slices, Explicit VR Little Endian, ct_NNNN.dcm."""
    out = _mkdir(out)
    ds = _ct_base(rows, cols, patient_name, patient_id, study_uid, seed, series_number, signed)
    paths = []
    for n in range(1, count + 1):
        _ct_slice(ds, n, seed, signed)
        sop_uid = uid(seed, ds.SeriesInstanceUID, n)
        paths.append(_write(ds, out / f"ct_{n:04d}.dcm", sop_uid))
    return paths


def cr_image(
    out: str | Path,
    rows: int = 1024,
    cols: int = 1024,
    patient_name: str = "TEST^CR",
    patient_id: str = "CR001",
    study_uid: str | None = None,
    seed: int = 0,
) -> list[Path]:
    """One CR chest PA, 16 bits allocated / 12 stored, MONOCHROME1, cr.dcm."""
    ds = _base(ComputedRadiographyImageStorage, "CR", patient_name, patient_id, study_uid, seed)
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.KVP = 110
    ds.ImagerPixelSpacing = [0.4, 0.4]
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    y, x = np.ogrid[:rows, :cols]
    lungs = (np.abs(2 * x - cols) > cols // 8) & (np.abs(2 * y - rows) < rows * 0.7)
    noise = np.random.default_rng(seed).integers(0, 200, (rows, cols))
    arr = (500 + (2000 * y) // rows + 1200 * lungs + noise).astype(np.uint16)
    ds.set_pixel_data(arr, "MONOCHROME1", 12, generate_instance_uid=False)
    return [_write(ds, _mkdir(out) / "cr.dcm", uid(seed, ds.SeriesInstanceUID, 1))]


def us_multiframe(
    out: str | Path,
    frames: int = 20,
    rows: int = 240,
    cols: int = 320,
    patient_name: str = "TEST^US",
    patient_id: str = "US001",
    study_uid: str | None = None,
    seed: int = 0,
) -> list[Path]:
    """One RGB 8-bit ultrasound cine loop of `frames` frames, us_multiframe.dcm."""
    ds = _base(UltrasoundMultiFrameImageStorage, "US", patient_name, patient_id, study_uid, seed)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL", "0001"]
    ds.BodyPartExamined = "ABDOMEN"
    ds.PatientOrientation = ""
    ds.LossyImageCompression = "00"
    ds.FrameTime = 40.0  # ms, 25 fps
    ds.FrameIncrementPointer = FRAME_TIME  # AT: points at Frame Time
    ds.CineRate = 25
    f, y, x = np.ogrid[:frames, :rows, :cols]
    noise = np.random.default_rng(seed).integers(0, 32, (frames, rows, cols))
    red, green = (x * 255) // cols, (y * 255) // rows
    blue = (((x + 8 * f) // 16) % 2) * 128 + noise  # stripes moving per frame
    arr = np.stack(np.broadcast_arrays(red, green, blue), axis=-1).astype(np.uint8)
    ds.set_pixel_data(arr, "RGB", 8, generate_instance_uid=False)
    path = _mkdir(out) / "us_multiframe.dcm"
    return [_write(ds, path, uid(seed, ds.SeriesInstanceUID, 1))]


def _compressed_ct(
    out: str | Path,
    name: str,
    syntax: str,
    rows: int,
    cols: int,
    patient_id: str,
    seed: int,
    signed: bool,
) -> list[Path]:
    ds = _ct_base(rows, cols, f"TEST^{name.upper()}", patient_id, None, seed, 1, signed)
    arr = ct_pixels(rows, cols, 0, seed, signed)
    _ct_slice(ds, 1, seed, signed)
    ds.compress(syntax, arr, generate_instance_uid=False)
    path = _mkdir(out) / f"{name}.dcm"
    return [_write(ds, path, uid(seed, ds.SeriesInstanceUID, 1))]


def j2k_instance(
    out: str | Path,
    rows: int = 256,
    cols: int = 256,
    patient_id: str = "J2K001",
    seed: int = 0,
    signed: bool = True,
) -> list[Path]:
    """One CT slice in JPEG 2000 Lossless, j2k.dcm.

    Its decoded pixels equal ``ct_pixels(rows, cols, 0, seed, signed)``::

        decoded_pixels(path) == ct_pixels(256, 256).tobytes()
    """
    return _compressed_ct(out, "j2k", JPEG2000Lossless, rows, cols, patient_id, seed, signed)


def jpegls_instance(
    out: str | Path,
    rows: int = 256,
    cols: int = 256,
    patient_id: str = "JLS001",
    seed: int = 0,
    signed: bool = True,
) -> list[Path]:
    """One CT slice in JPEG-LS Lossless, jpegls.dcm (pixels as for j2k_instance)."""
    return _compressed_ct(out, "jpegls", JPEGLSLossless, rows, cols, patient_id, seed, signed)


def vietnamese_patient(out: str | Path, seed: int = 0) -> list[Path]:
    """One small CT slice, ISO_IR 192, Vietnamese names, vietnamese.dcm."""
    ds = _ct_base(64, 64, VIETNAMESE_NAME, "VN0001", None, seed)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.StudyDescription = VIETNAMESE_STUDY
    ds.SeriesDescription = VIETNAMESE_SERIES
    ds.ReferringPhysicianName = VIETNAMESE_REFERRER
    _ct_slice(ds, 1, seed)
    path = _mkdir(out) / "vietnamese.dcm"
    return [_write(ds, path, uid(seed, ds.SeriesInstanceUID, 1))]


def without_sop_instance_uid(out: str | Path, seed: int = 0) -> list[Path]:
    """A small CT slice lacking SOPInstanceUID and MediaStorageSOPInstanceUID."""
    ds = _ct_base(64, 64, "TEST^NOSOPUID", "NOSOP01", None, seed)
    _ct_slice(ds, 1, seed)
    ds.preamble = b"\x00" * 128
    ds.file_meta.FileMetaInformationGroupLength = 0  # pydicom fills it in
    ds.file_meta.FileMetaInformationVersion = b"\x00\x01"
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    path = _mkdir(out) / "no_sop_uid.dcm"
    dcmwrite(path, ds, enforce_file_format=False)
    return [path]


def mp4_file(path: str | Path, frames: int = 50, rows: int = 240, cols: int = 320) -> Path:
    """An H.264 High profile, level 4.1, yuv420p, 25 fps MP4 of a moving test pattern."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx264", rate=25, options={"profile": "high", "level": "4.1"}
        )
        stream.width, stream.height, stream.pix_fmt = cols, rows, "yuv420p"
        y, x = np.ogrid[:rows, :cols]
        for n in range(frames):
            arr = np.zeros((rows, cols, 3), np.uint8)
            arr[..., 0] = (x * 255) // cols
            arr[..., 1] = (y * 255) // rows
            arr[..., 2] = (((x + 8 * n) // 16) % 2) * 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def video_endoscopic(
    out: str | Path,
    frames: int = 50,
    patient_name: str = "TEST^ENDO",
    patient_id: str = "ES001",
    study_uid: str | None = None,
    seed: int = 0,
) -> list[Path]:
    """A Video Endoscopic Image in MPEG-4 AVC High@4.1 (the whole MP4 in one fragment)."""
    folder = _mkdir(out)
    data = mp4_file(folder / "source.mp4", frames).read_bytes()
    (folder / "source.mp4").unlink()
    ds = _base(VideoEndoscopicImageStorage, "ES", patient_name, patient_id, study_uid, seed)
    ds.file_meta.TransferSyntaxUID = MPEG4HP41
    ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    ds.PhotometricInterpretation = "YBR_PARTIAL_420"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.AcquisitionContextSequence = []
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator = "69695003", "SCT"
    region.CodeMeaning = "Stomach"
    ds.AnatomicRegionSequence = [region]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.Rows, ds.Columns, ds.NumberOfFrames = 240, 320, frames
    ds.FrameIncrementPointer = FRAME_TIME
    ds.FrameTime, ds.CineRate = "40", 25
    ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_14496_10"
    ds.PatientOrientation = ""
    ds.PixelData = encapsulate([data], has_bot=False)
    ds["PixelData"].VR = "OB"
    return [_write(ds, folder / "video.dcm", uid(seed, ds.SeriesInstanceUID, 1))]


_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def large_cine(
    out: str | Path,
    megabytes: int = 200,
    patient_id: str = "VIDEO01",
    study_uid: str | None = None,
    seed: int = 0,
) -> list[Path]:
    """One ultrasound cine loop of about ``megabytes`` MB (640x480 RGB frames of noise, native
    pixels: nothing compresses it), large_cine.dcm: the large object of the uplink fault tests."""
    rows, cols = 480, 640
    frames = max(1, megabytes * 1_000_000 // (rows * cols * 3))
    ds = _base(UltrasoundMultiFrameImageStorage, "US", "TEST^VIDEO", patient_id, study_uid, seed)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL", "0001"]
    ds.PatientOrientation = ""
    ds.LossyImageCompression = "00"
    ds.FrameTime = 40.0
    ds.FrameIncrementPointer = FRAME_TIME
    ds.CineRate = 25
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.random.default_rng(seed).bytes(frames * rows * cols * 3)
    ds["PixelData"].VR = "OB"
    path = _mkdir(out) / "large_cine.dcm"
    return [_write(ds, path, uid(seed, ds.SeriesInstanceUID, "cine"))]


def encapsulated_pdf(out: str | Path, seed: int = 0) -> list[Path]:
    """An Encapsulated PDF instance holding a one-page PDF."""
    ds = _base(EncapsulatedPDFStorage, "DOC", "TEST^PDF", "PDF001", None, seed)
    ds.ConversionType = "SD"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.DocumentTitle = "Synthetic report"
    ds.AcquisitionDateTime = ""
    ds.ConceptNameCodeSequence = []
    ds.BurnedInAnnotation = "YES"
    ds.EncapsulatedDocument = _PDF + (b"\0" if len(_PDF) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(_PDF)
    path = _mkdir(out) / "report.dcm"
    return [_write(ds, path, uid(seed, ds.SeriesInstanceUID, 1))]


def truncated_copy(src: str | Path, dst: str | Path, cut_bytes: int = 1000) -> Path:
    """Copy `src` to `dst` minus its last `cut_bytes` bytes (inside Pixel Data)."""
    ds = dcmread(src, defer_size=256)
    pixel_tell = ds.get_item(PIXEL_DATA, keep_deferred=True).value_tell
    data = Path(src).read_bytes()
    if not 0 < cut_bytes < len(data) - pixel_tell:
        raise ValueError(f"cutting {cut_bytes} bytes of {src} misses its Pixel Data")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[:-cut_bytes])
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--ct", type=int, default=0, metavar="N", help="CT slices")
    for kind in ("cr", "us", "j2k", "jls", "vietnamese", "truncated", "no-sop-uid"):
        parser.add_argument(f"--{kind}", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    flags = ("cr", "us", "j2k", "jls", "vietnamese", "truncated", "no_sop_uid")
    everything = not args.ct and not any(getattr(args, f) for f in flags)
    want = {f: everything or getattr(args, f) for f in flags}
    out, seed = args.outdir, args.seed

    paths = ct_series(out, args.ct or (10 if everything else 0), seed=seed)
    paths += cr_image(out, seed=seed) if want["cr"] else []
    paths += us_multiframe(out, seed=seed) if want["us"] else []
    paths += j2k_instance(out, seed=seed) if want["j2k"] else []
    paths += jpegls_instance(out, seed=seed) if want["jls"] else []
    paths += vietnamese_patient(out, seed=seed) if want["vietnamese"] else []
    paths += without_sop_instance_uid(out, seed=seed) if want["no_sop_uid"] else []
    if want["truncated"]:
        with tempfile.TemporaryDirectory() as tmp:
            src = ct_series(tmp, 1, patient_id="TRUNC01", seed=seed)[0]
            paths.append(truncated_copy(src, Path(out) / "truncated.dcm"))
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
