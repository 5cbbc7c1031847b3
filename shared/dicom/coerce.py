"""Attribute coercion of a stored instance, with the replaced values kept (RIS-3.8, PACS-6).

PS3.3 C.12.1.1.9: every rewrite appends one item to Original Attributes Sequence (0400,0561)
holding Modified Attributes Sequence (0400,0550) — the attributes as they were, an attribute
that was absent recorded with an empty value — plus Attribute Modification DateTime,
Modifying System, Source of Previous Values (the AE that sent them) and Reason for the
Attribute Modification (``COERCE`` when an order's values are applied, ``CORRECT`` for a
patient update or merge). Earlier items stay, so the history is complete.

Only the attributes named by a :class:`Coercion` change. Pixel data and every other element
are written back as read (raw bytes), in the same transfer syntax. When a new value needs
characters outside the instance's character set, every text value is decoded and the instance
is re-encoded as UTF-8 (``ISO_IR 192``): the characters stay the same, only their encoding
changes.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from mekong.shared.dicom.header import InstanceRecord, InvalidInstance, parse_header, record_from
from mekong.shared.dicom.integrity import check_complete
from mekong.shared.dicom.part10 import split_part10

COERCE = "COERCE"
CORRECT = "CORRECT"
UTF8 = "ISO_IR 192"
_ASCII_SETS = ("", "ISO_IR 6", UTF8)
_DEFER = 1024 * 1024


@dataclass(frozen=True)
class Coercion:
    """What an instance must say. ``values``: keyword → value (text form; PN with ``^``).
    ``request_item``: one Request Attributes Sequence item, added only when the instance has
    no such sequence (a modality's own request attributes are kept)."""

    values: dict[str, str]
    request_item: dict[str, str] = field(default_factory=dict)
    reason: str = COERCE
    modifying_system: str = "MEKONG"
    source: str = ""  # Source of Previous Values: the AE title that sent the instance


def pending_changes(ds: Dataset, coercion: Coercion) -> list[str]:
    """Keywords whose value differs from what the coercion asks (empty: nothing to do)."""
    changed = [k for k, v in coercion.values.items() if _normal(_current(ds, k)) != _normal(v)]
    if coercion.request_item and not ds.get("RequestAttributesSequence"):
        changed.append("RequestAttributesSequence")
    return changed


@dataclass(frozen=True)
class Coerced:
    data: bytes  # the new Part 10 bytes
    record: InstanceRecord  # their index record
    before: InstanceRecord  # the record of the version replaced


def coerce_instance(
    source: bytes | Path, coercion: Coercion, now: dt.datetime | None = None
) -> Coerced | None:
    """The rewritten instance, or None when it already carries every value. Raises
    :class:`InvalidInstance` if the result would not be the same instance (UIDs) or cannot
    be read back. From a file, values over 1 MB (pixel data) are read only while the new
    version is written, so memory holds the new version, not both."""
    if isinstance(source, Path):
        ds = pydicom.dcmread(source, defer_size=_DEFER)
    else:
        ds = pydicom.dcmread(io.BytesIO(source))
    changed = pending_changes(ds, coercion)
    if not changed:
        return None
    before = record_from(ds)
    originals = _originals(ds, changed)
    _use_unicode_if_needed(ds, coercion)
    for keyword in changed:
        if keyword == "RequestAttributesSequence":
            ds.RequestAttributesSequence = Sequence([_item(coercion.request_item)])
        else:
            setattr(ds, keyword, coercion.values[keyword])
    _append_history(ds, originals, coercion, now or dt.datetime.now().astimezone())
    data = _encode(ds)
    return Coerced(data, _checked(data, before), before)


def _current(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value)


def _normal(value: str) -> str:
    """Compare PN and text without padding or empty trailing name components."""
    return value.strip().rstrip("^").strip()


def _originals(ds: Dataset, keywords: list[str]) -> Dataset:
    item = Dataset()
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword
        if keyword in ds:
            old = ds[keyword]
            value = old.value
            if isinstance(value, Sequence):
                value = Sequence([_copy(i) for i in value])
            item.add(DataElement(tag, old.VR, value))
        else:
            vr = dictionary_VR(tag)
            item.add(DataElement(tag, vr, Sequence() if vr == "SQ" else ""))
    return item


def _copy(item: Dataset) -> Dataset:
    copied = Dataset()
    for element in item:
        value = element.value
        if isinstance(value, Sequence):
            value = Sequence([_copy(i) for i in value])
        copied.add(DataElement(element.tag, element.VR, value))
    return copied


def _use_unicode_if_needed(ds: Dataset, coercion: Coercion) -> None:
    texts = [*coercion.values.values(), *coercion.request_item.values()]
    if all(text.isascii() for text in texts):
        return
    current = ds.get("SpecificCharacterSet", "")
    names = [current] if isinstance(current, str) else list(current)
    if len(names) == 1 and names[0].strip() == UTF8:
        return
    if not all(name.strip() in _ASCII_SETS for name in names):
        ds.decode()  # every text value to str with the old set; written again as UTF-8
    ds.SpecificCharacterSet = UTF8


def _item(values: dict[str, str]) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _append_history(ds: Dataset, originals: Dataset, coercion: Coercion, now: dt.datetime) -> None:
    entry = Dataset()
    entry.SourceOfPreviousValues = coercion.source[:64]
    entry.AttributeModificationDateTime = now.strftime("%Y%m%d%H%M%S.%f%z")
    entry.ModifyingSystem = coercion.modifying_system[:64]
    entry.ReasonForTheAttributeModification = coercion.reason
    entry.ModifiedAttributesSequence = Sequence([originals])
    history = ds.get("OriginalAttributesSequence")
    if history is None:
        ds.OriginalAttributesSequence = Sequence([entry])
    else:
        history.append(entry)


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _checked(data: bytes, before: InstanceRecord) -> InstanceRecord:
    """Read the new version back: complete, and still the same instance."""
    offset, syntax = split_part10(data)
    check_complete(memoryview(data)[offset:], syntax)
    after = record_from(parse_header(data))
    same = (before.sop_uid, before.study_uid, before.series_uid, before.transfer_syntax)
    if (after.sop_uid, after.study_uid, after.series_uid, after.transfer_syntax) != same:
        raise InvalidInstance(f"coercion of {before.sop_uid} changed its identity")
    return after
