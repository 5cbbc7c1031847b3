"""Modality Worklist C-FIND responses: one identifier per scheduled procedure step (RIS-5.1).

A response carries every key of the request, filled from the RIS where Mekong knows it and
zero-length otherwise, plus Specific Character Set ``ISO_IR 192`` (UTF-8: Vietnamese names
byte for byte as the HIS sent them). For an AE flagged ``ascii_worklist`` every text value is
folded to ASCII (``Nguyễn^Thị`` → ``Nguyen^Thi``) and the response uses the default character
repertoire (no Specific Character Set), for modalities that cannot show UTF-8. A
ScheduledProcedureStepSequence key with no item is answered with every step key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from mekong.shared.dicom.names import ascii_text
from mekong.shared.dimse.worklist_keys import (
    DICOM_STATUS,
    SPS_SEQUENCE,
    STEP_KEYS,
    TOP_KEYS,
    Key,
)
from mekong.shared.ris.status import Status

RESPONSE_CHARSET = "ISO_IR 192"
SERVICE_SCHEME = "99MEKONG"  # local coding scheme: the RIS service catalogue (RIS-9.6)
# Referenced Study Sequence points at the order's study, the way worklist SCPs commonly do
DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"
_TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC"})
_MAX_LENGTH = {"SH": 16, "LO": 64, "AE": 16, "CS": 16}

Text = Callable[[str], str]


def worklist_response(identifier: Dataset, item: dict[str, Any], ascii_only: bool) -> Dataset:
    text: Text = ascii_text if ascii_only else _same
    response = Dataset()
    if not ascii_only:
        response.SpecificCharacterSet = RESPONSE_CHARSET
    for element in identifier:
        keyword = element.keyword
        if keyword == "SpecificCharacterSet":
            continue
        if keyword == SPS_SEQUENCE:
            response.add(DataElement(element.tag, "SQ", Sequence([_step(element, item, text)])))
        else:
            response.add(_answer(element, TOP_KEYS.get(keyword), item, text))
    return response


def _step(element: DataElement, item: dict[str, Any], text: Text) -> Dataset:
    step = Dataset()
    query = element.value[0] if element.value else None
    if query is None or not len(query):
        for keyword, key in STEP_KEYS.items():
            step.add(_value(DataElement(keyword, key.vr, None), key, item, text))
        return step
    for inner in query:
        if inner.keyword != "SpecificCharacterSet":
            step.add(_answer(inner, STEP_KEYS.get(inner.keyword), item, text))
    return step


def _answer(element: DataElement, key: Key | None, item: dict[str, Any], text: Text) -> DataElement:
    if key is None:  # not a worklist key Mekong knows: zero length
        return DataElement(element.tag, element.VR, [] if element.VR == "SQ" else None)
    return _value(element, key, item, text)


def _value(element: DataElement, key: Key, item: dict[str, Any], text: Text) -> DataElement:
    if key.vr == "SQ":
        return DataElement(element.tag, "SQ", Sequence(_sequence(element.keyword, item, text)))
    value = str(item.get(key.field, "") or "")
    if key.field == "status":
        value = DICOM_STATUS.get(Status(value), value) if value else ""
    if key.vr in _TEXT_VRS:
        value = text(value)
    if key.vr in _MAX_LENGTH:
        value = value[: _MAX_LENGTH[key.vr]]
    return DataElement(element.tag, key.vr, value or None)


def _sequence(keyword: str, item: dict[str, Any], text: Text) -> list[Dataset]:
    if keyword in ("RequestedProcedureCodeSequence", "ScheduledProtocolCodeSequence"):
        return _service_code(item, text)
    if keyword == "ReferencedStudySequence" and item.get("study_uid"):
        reference = Dataset()
        reference.ReferencedSOPClassUID = DETACHED_STUDY_MANAGEMENT
        reference.ReferencedSOPInstanceUID = item["study_uid"]
        return [reference]
    return []


def _service_code(item: dict[str, Any], text: Text) -> list[Dataset]:
    """The ordered service as a code (value = service code, meaning = its description)."""
    if not item.get("service_code"):
        return []
    code, value = Dataset(), str(item["service_code"])
    if len(value) <= 16:
        code.CodeValue = value
    else:  # longer codes go in Long Code Value (PS3.3 8.8)
        code.LongCodeValue = value
    code.CodingSchemeDesignator = SERVICE_SCHEME
    code.CodeMeaning = text(str(item.get("procedure_description") or item["service_code"]))[:64]
    return [code]


def _same(value: str) -> str:
    return value
