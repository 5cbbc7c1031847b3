"""C-FIND / C-GET / C-MOVE identifiers ↔ index queries and response datasets."""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from mekong.shared.db.attributes import ATTRIBUTES, UNIQUE_KEYS, Level
from mekong.shared.db.query import Query

RESPONSE_CHARSET = "ISO_IR 192"


class IdentifierError(ValueError):
    """The identifier cannot be used (bad level, bad value); the message says which."""


def query_from(identifier: Dataset, fuzzy: bool = False) -> Query:
    try:
        level = Level.parse(str(identifier.get("QueryRetrieveLevel", "")))
    except KeyError:
        raise IdentifierError(
            f"QueryRetrieveLevel must be PATIENT, STUDY, SERIES or IMAGE, "
            f"got {identifier.get('QueryRetrieveLevel')!r}"
        ) from None
    filters = {}
    for element in identifier:
        keyword = element.keyword
        if keyword in ATTRIBUTES and not isinstance(element.value, Sequence):
            filters[keyword] = _as_text(element.value)
    return Query(level, filters, fuzzy=fuzzy)


def returned_keys(identifier: Dataset, level: Level) -> list[str]:
    keys = {e.keyword for e in identifier if e.keyword in ATTRIBUTES}
    keys.add(UNIQUE_KEYS[level])
    return sorted(k for k in keys if ATTRIBUTES[k].level <= level)


def response_for(identifier: Dataset, row: dict[str, Any], retrieve_ae: str) -> Dataset:
    """A C-FIND response: the identifier's keys, filled from the row where the index has them."""
    response = Dataset()
    response.SpecificCharacterSet = RESPONSE_CHARSET
    for element in identifier:
        keyword = element.keyword
        if keyword == "SpecificCharacterSet":
            continue
        if keyword == "QueryRetrieveLevel":
            response.QueryRetrieveLevel = element.value
            continue
        if keyword in row:
            setattr(response, keyword, _dicom_value(row[keyword], ATTRIBUTES[keyword].vr))
        elif keyword == "RetrieveAETitle":
            response.RetrieveAETitle = retrieve_ae
        elif keyword == "InstanceAvailability":
            response.InstanceAvailability = "ONLINE"
        else:
            response.add(element.__class__(element.tag, element.VR, _empty(element.VR)))
    for keyword in (k for k in row if k not in response):
        setattr(response, keyword, _dicom_value(row[keyword], ATTRIBUTES[keyword].vr))
    return response


def _as_text(value: Any) -> str:
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value)


def _dicom_value(value: Any, vr: str) -> Any:
    if value in (None, ""):
        return None if vr in ("US", "IS") else ""
    if vr == "CS" and isinstance(value, str) and "\\" in value:
        return value.split("\\")
    if vr == "IS":
        return str(value)
    return value


def _empty(vr: str) -> Any:
    return [] if vr == "SQ" else None
