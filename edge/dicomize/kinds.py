"""Device kind → the SOP classes Mekong creates for it (standards.md §1.1)."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.uid import (
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    VideoEndoscopicImageStorage,
    VideoPhotographicImageStorage,
    VLEndoscopicImageStorage,
)


@dataclass(frozen=True)
class Kind:
    name: str
    modality: str
    still_class: str  # a captured frame
    video_class: str  # a clip or an imported MP4


KINDS = {
    "endoscopy": Kind("endoscopy", "ES", VLEndoscopicImageStorage, VideoEndoscopicImageStorage),
    "ultrasound": Kind(
        "ultrasound", "US", UltrasoundImageStorage, UltrasoundMultiFrameImageStorage
    ),
    "other": Kind("other", "XC", SecondaryCaptureImageStorage, VideoPhotographicImageStorage),
}


def kind_of(name: str) -> Kind:
    return KINDS.get(name, KINDS["other"])
