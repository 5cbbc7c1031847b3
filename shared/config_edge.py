"""Configuration of the edge's devices (issue 5): capture devices, watch folders, QR-label key
devices — the ``[edge]`` section and its checks."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mekong.shared.config_checks import ConfigError, is_valid_ae_title
from mekong.shared.config_checks import one_of as _one_of

CAPTURE_KINDS = ("endoscopy", "ultrasound", "other")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
_DEVICE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class CaptureDeviceConfig:
    """One frame grabber, stream or demo file the edge records from (RIS-5.6, RIS-6.7)."""

    name: str = ""  # 1-32 letters, digits, '_', '.', '-': the device's key in URLs
    source: str = ""  # /dev/videoN, rtsp://…, http://…, or a video file path (demos, tests)
    kind: str = "other"  # endoscopy | ultrasound | other: which DICOM objects it makes
    label: str = ""  # what people see, e.g. "Máy nội soi phòng 2"
    width: int = 0  # asked of a live device; 0 = its own
    height: int = 0
    fps: float = 30.0  # the clip's constant frame rate
    crop: tuple[int, ...] = ()  # x, y, width, height kept of each frame; () = whole frame
    modality: str = ""  # default by kind: ES, US, XC
    anatomic_region: str = ""  # "code^scheme^meaning", e.g. "69695003^SCT^Stomach"
    preset: str = "ultrafast"  # libx264 speed preset of live clips
    crf: int = 23  # libx264 quality (lower = better, larger)


@dataclass(frozen=True)
class WatchFolderConfig:
    """A folder a non-DICOM device drops JPEG/PNG/PDF/MP4 files into (RIS-5.7, RIS-6.8)."""

    path: str = ""
    device: str = ""  # a capture device name (its kind is used) or any name for the series
    kind: str = "other"  # when ``device`` is not a capture device
    accession_pattern: str = ""  # regex on the file name; group "accession" (or group 1)
    accession: str = ""  # used when the pattern is unset or does not match
    stable_seconds: float = 2.0  # a file is taken once its size stayed the same this long


KEY_ATTRIBUTES = ("AccessionNumber", "PatientID", "StudyDescription", "RequestedProcedureID",
                  "PatientName")  # fmt: skip


@dataclass(frozen=True)
class KeyDeviceConfig:
    """A modality without worklist whose technician scans the order's QR label (FEAT-5):
    which DICOM attribute the scanned key lands in, and a regex that finds it there."""

    ae_title: str = ""  # the modality's calling AE title
    attribute: str = "AccessionNumber"  # one of KEY_ATTRIBUTES
    regex: str = ""  # optional: group "key" (or group 1, or the whole match) is the key
    label: str = ""  # what people see, e.g. "Máy X quang phòng 3"


@dataclass(frozen=True)
class EdgeConfig:
    capture_devices: tuple[CaptureDeviceConfig, ...] = ()
    watch_folders: tuple[WatchFolderConfig, ...] = ()
    key_devices: tuple[KeyDeviceConfig, ...] = ()


def validate_edge(edge: EdgeConfig) -> None:
    names: set[str] = set()
    for n, device in enumerate(edge.capture_devices):
        validate_capture_device(device, f"edge.capture_devices[{n}]")
        if device.name in names:
            raise ConfigError(f"edge.capture_devices[{n}].name {device.name!r} is used twice")
        names.add(device.name)
    for n, folder in enumerate(edge.watch_folders):
        _validate_watch_folder(folder, f"edge.watch_folders[{n}]")
    titles: set[str] = set()
    for n, device in enumerate(edge.key_devices):
        key = f"edge.key_devices[{n}]"
        _validate_key_device(device, key)
        if device.ae_title in titles:
            raise ConfigError(f"{key}.ae_title {device.ae_title!r} is used twice")
        titles.add(device.ae_title)


def _validate_key_device(device: KeyDeviceConfig, key: str) -> None:
    if not is_valid_ae_title(device.ae_title):
        raise ConfigError(f"{key}.ae_title must be the modality's AE title (1-16 characters), "
                          f"got {device.ae_title!r}")  # fmt: skip
    _one_of(f"{key}.attribute", device.attribute, KEY_ATTRIBUTES)
    if device.regex:
        try:
            re.compile(device.regex)
        except re.error as exc:
            raise ConfigError(f"{key}.regex is not a regular expression: {exc}") from None


def validate_capture_device(device: CaptureDeviceConfig, key: str) -> None:
    """Raise ConfigError naming ``key`` (a config path, or "device" for the REST API)."""
    if not _DEVICE_NAME.match(device.name):
        raise ConfigError(
            f"{key}.name must be 1-32 letters, digits, '_', '.' or '-', got {device.name!r}"
        )
    if not device.source.strip():
        raise ConfigError(f"{key}.source is required: /dev/videoN, a stream URL or a file")
    _one_of(f"{key}.kind", device.kind, CAPTURE_KINDS)
    _one_of(f"{key}.preset", device.preset, X264_PRESETS)
    if not 0 < device.fps <= 120:
        raise ConfigError(f"{key}.fps must be > 0 and <= 120, got {device.fps}")
    if device.width < 0 or device.height < 0 or not 0 <= device.crf <= 51:
        raise ConfigError(f"{key}: width and height must be >= 0 and crf 0..51")
    if device.crop and (len(device.crop) != 4 or min(device.crop) < 0 or min(device.crop[2:]) < 16):
        raise ConfigError(
            f"{key}.crop must be [x, y, width, height] with width and height >= 16, "
            f"got {list(device.crop)}"
        )
    if device.modality and not re.match(r"^[A-Z]{2,16}$", device.modality):
        raise ConfigError(f"{key}.modality must be a DICOM modality such as ES, got "
                          f"{device.modality!r}")  # fmt: skip
    if device.anatomic_region and device.anatomic_region.count("^") != 2:
        raise ConfigError(f"{key}.anatomic_region must be 'code^scheme^meaning', got "
                          f"{device.anatomic_region!r}")  # fmt: skip


def _validate_watch_folder(folder: WatchFolderConfig, key: str) -> None:
    if not folder.path.strip():
        raise ConfigError(f"{key}.path is required")
    _one_of(f"{key}.kind", folder.kind, CAPTURE_KINDS)
    if folder.stable_seconds < 0:
        raise ConfigError(f"{key}.stable_seconds must be >= 0")
    if folder.accession_pattern:
        try:
            re.compile(folder.accession_pattern)
        except re.error as exc:
            raise ConfigError(f"{key}.accession_pattern is not a regular expression: "
                              f"{exc}") from None  # fmt: skip
    if not folder.accession_pattern and not folder.accession:
        raise ConfigError(f"{key}: set accession_pattern, accession, or both")
