"""Sequence keys in C-FIND (PS3.4 C.2.2.2.6), answered from a stored instance's header.

The index holds no sequence contents, so a query with sequence keys reads the header of one
instance of each candidate row (after the index has applied every other key). A sequence key
with a non-empty item matches when at least one stored item matches all of that item's
non-empty keys (single value, ``*``/``?`` wildcard, UID list); the response carries the
matching items, reduced to the keys asked for. An empty sequence key is universal and returns
every stored item.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence


def sequence_keys(identifier: Dataset) -> list[DataElement]:
    return [e for e in identifier if e.VR == "SQ"]


def read_sequences(path: Path, keys: list[DataElement]) -> Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[k.tag for k in keys])


def match_and_fill(keys: list[DataElement], header: Dataset, response: Dataset) -> bool:
    """False when a sequence key does not match; otherwise put the answers in ``response``."""
    for key in keys:
        query_item = key.value[0] if key.value else None
        stored = list(header.get(key.tag).value) if key.tag in header else []
        if query_item is not None and _has_values(query_item):
            stored = [item for item in stored if _item_matches(query_item, item)]
            if not stored:
                return False
        answer = [_reduce(item, query_item) for item in stored]
        response.add(DataElement(key.tag, "SQ", Sequence(answer)))
    return True


def _has_values(item: Dataset) -> bool:
    return any(e.VR != "SQ" and _text(e.value) for e in item)


def _item_matches(query_item: Dataset, item: Dataset) -> bool:
    for element in query_item:
        pattern = "" if element.VR == "SQ" else _text(element.value)
        stored = _text(item[element.tag].value) if element.tag in item else ""
        if pattern and not _value_matches(stored, pattern, element.VR):
            return False
    return True


def _value_matches(value: str, pattern: str, vr: str) -> bool:
    if vr == "UI" and "\\" in pattern:
        return value in pattern.split("\\")
    if "*" in pattern or "?" in pattern:
        return fnmatchcase(value, pattern.replace("[", "[[]"))
    return value == pattern


def _reduce(item: Dataset, query_item: Dataset | None) -> Dataset:
    """The stored item, limited to the keys the query item names (all when it names none)."""
    if query_item is None or len(query_item) == 0:
        return item
    reduced = Dataset()
    for element in query_item:
        if element.tag in item:
            reduced.add(item[element.tag])
    return reduced


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)  # type: ignore[union-attr]
    return str(value).strip()
