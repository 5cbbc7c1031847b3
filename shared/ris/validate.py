"""Value checks shared by HL7 and REST: DICOM value representations the MWL will carry.

Each returns the cleaned value or raises :class:`Invalid` / :class:`Missing` naming the field.
Text is never re-normalised (NFC/NFD kept as sent): Vietnamese names stay byte-exact.
"""

from __future__ import annotations

import datetime as dt
import re

from mekong.shared.config import is_valid_ae_title
from mekong.shared.ris.errors import Invalid, Missing, UnknownCode

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CS = re.compile(r"^[A-Z0-9 _]{0,16}$")
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
SEXES = {"M": "M", "F": "F", "O": "O", "U": "", "A": "O", "N": "", "": ""}


def required(value: str, field: str) -> str:
    if not value.strip():
        raise Missing(f"{field} is required", field)
    return value


def short_string(value: str, field: str, length: int = 16) -> str:
    """DICOM SH/LO: at most ``length`` characters, no backslash, no control characters."""
    value = value.strip()
    if len(value) > length:
        raise Invalid(f"{field} is {len(value)} characters; at most {length} allowed", field)
    if "\\" in value or _CONTROL.search(value):
        raise Invalid(f"{field} must not contain a backslash or control characters", field)
    return value


def text(value: str, field: str, length: int = 1024) -> str:
    if len(value) > length:
        raise Invalid(f"{field} is {len(value)} characters; at most {length} allowed", field)
    return value


def person_name(value: str, field: str) -> str:
    """DICOM PN (``Family^Given^Middle^Prefix^Suffix``), each group at most 64 characters."""
    if _CONTROL.search(value) or "\\" in value:
        raise Invalid(f"{field} must not contain a backslash or control characters", field)
    for group in value.split("="):
        if len(group) > 64:
            raise Invalid(f"{field} is longer than 64 characters", field)
    if value.count("^") > 4:
        raise Invalid(f"{field} has more than 5 name components", field)
    return value.rstrip("^")


def date(value: str, field: str) -> str:
    """YYYYMMDD (a DICOM DA); '' stays ''. HL7 timestamps are cut to their date."""
    value = value.strip()[:8]
    if not value:
        return ""
    try:
        dt.datetime.strptime(value, "%Y%m%d")
    except ValueError:
        raise Invalid(f"{field} must be a date YYYYMMDD, got {value!r}", field) from None
    return value


def time_of_day(value: str, field: str) -> str:
    """HHMM[SS] → HHMMSS (a DICOM TM without fraction); '' stays ''."""
    value = value.strip()
    if not value:
        return ""
    padded = (value + "00")[:6] if len(value) == 4 else value[:6]
    try:
        dt.datetime.strptime(padded, "%H%M%S")
    except ValueError:
        raise Invalid(f"{field} must be a time HHMM[SS], got {value!r}", field) from None
    return padded


def sex(value: str, field: str) -> str:
    """HL7 table 0001 → DICOM PatientSex (M, F, O or empty)."""
    code = value.strip().upper()
    if code not in SEXES:
        raise UnknownCode(f"{field} must be one of M, F, O, U, A, N; got {value!r}", field)
    return SEXES[code]


def code_string(value: str, field: str) -> str:
    """DICOM CS (modality, body part): upper-case letters, digits, space, underscore; ≤16."""
    value = value.strip().upper()
    if not _CS.match(value):
        raise Invalid(f"{field} must be up to 16 of A-Z 0-9 _ (got {value!r})", field)
    return value


def ae_title(value: str, field: str) -> str:
    value = value.strip()
    if value and not is_valid_ae_title(value):
        raise Invalid(f"{field} must be a DICOM AE title (1-16 ASCII characters)", field)
    return value


def uid(value: str, field: str) -> str:
    value = value.strip()
    if value and (len(value) > 64 or not _UID.match(value)):
        raise Invalid(f"{field} must be a DICOM UID (digits and dots, at most 64)", field)
    return value
