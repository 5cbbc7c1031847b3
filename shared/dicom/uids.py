"""The UIDs Mekong makes (RIS-9.3: the DICOM root UID is configurable).

Studies of new orders, MPPS instances Mekong creates, and every object made from video,
snapshots and imported files get UIDs under ``dicom.uid_root``. Without a root (the default)
they are UUID-derived ``2.25.<decimal>`` UIDs (PS3.5 B.2), which need no registration. With
a root (e.g. the hospital's registered ``1.2.840.xxxxx.1``) they are ``<root>.<random or
derived digits>``, at most 64 characters. The root is set once per process at start
(:func:`configure`, from the node's configuration).
"""

from __future__ import annotations

import re

from pydicom.uid import generate_uid

MAX_ROOT = 40  # leaves ≥ 24 digits of randomness below it
_ROOT = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_root = ""


def check_root(root: str) -> str:
    """'' or a valid root (digits and dots, no leading zeros, ≤ 40 characters); else
    ValueError saying what is wrong."""
    if root and (len(root) > MAX_ROOT or not _ROOT.fullmatch(root)):
        raise ValueError(
            f"a DICOM root UID is digits separated by dots, no component with a leading zero, "
            f"at most {MAX_ROOT} characters (e.g. 1.2.840.99999.1); got {root!r}"
        )
    return root


def configure(root: str) -> None:
    global _root
    _root = check_root(root)


def new_uid() -> str:
    """A new random UID under the configured root."""
    return generate_uid(prefix=f"{_root}." if _root else None)


def derived_uid(*entropy: str) -> str:
    """The same UID for the same inputs (idempotent conversions), under the configured root."""
    return generate_uid(prefix=f"{_root}." if _root else None, entropy_srcs=list(entropy))
