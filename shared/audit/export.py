"""Audit events as DICOM audit messages (PS3.15 Annex A.5, the RFC 3881 based schema)."""

from __future__ import annotations

import datetime
import json
from typing import Any
from xml.etree import ElementTree as ET

# action → (EventID code, meaning, EventActionCode)
_EVENTS: dict[str, tuple[str, str, str]] = {
    "login": ("110114", "User Authentication", "E"),
    "logout": ("110114", "User Authentication", "E"),
    "images.query": ("110112", "Query", "E"),
    "images.retrieve": ("110103", "DICOM Instances Accessed", "R"),
    "images.view": ("110103", "DICOM Instances Accessed", "R"),
    "images.store": ("110104", "DICOM Instances Transferred", "C"),
    "audit.read": ("110101", "Audit Log Used", "R"),
    "audit.export": ("110101", "Audit Log Used", "R"),
}
_SECURITY = ("110113", "Security Alert", "E")  # user, token, password and configuration changes


def audit_messages(events: list[dict[str, Any]], source_id: str) -> str:
    root = ET.Element("AuditMessages")
    for event in events:
        root.append(audit_message(event, source_id))
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def audit_message(event: dict[str, Any], source_id: str) -> ET.Element:
    code, meaning, action_code = _EVENTS.get(event["action"], _SECURITY)
    message = ET.Element("AuditMessage")
    identification = ET.SubElement(message, "EventIdentification", {
        "EventActionCode": action_code,
        "EventDateTime": _iso(event["at"]),
        "EventOutcomeIndicator": "0" if event["outcome"] == "success" else "4",
    })  # fmt: skip
    _code(identification, "EventID", code, "DCM", meaning)
    ET.SubElement(message, "ActiveParticipant", {
        "UserID": event["actor"], "UserIsRequestor": "true",
        "NetworkAccessPointID": event["source"] or "localhost",
        "NetworkAccessPointTypeCode": "2",
    })  # fmt: skip
    ET.SubElement(message, "AuditSourceIdentification", {"AuditSourceID": source_id})
    if event["object"]:
        _participant(
            message,
            event["object"],
            "2",
            "3",
            ("110180", "DCM", "Study Instance UID")
            if event["action"].startswith("images.")
            else ("12", "RFC-3881", "URI"),
        )
    if event["patient_id"]:
        _participant(message, event["patient_id"], "1", "1", ("2", "RFC-3881", "Patient Number"))
    detail = json.loads(event["detail"] or "{}")
    if detail:
        ET.SubElement(
            message, "ParticipantObjectDetail", {"type": "detail", "value": json.dumps(detail)}
        )
    return message


def _participant(message: ET.Element, object_id: str, type_code: str, role: str,
                 id_type: tuple[str, str, str]) -> None:  # fmt: skip
    participant = ET.SubElement(message, "ParticipantObjectIdentification", {
        "ParticipantObjectID": object_id, "ParticipantObjectTypeCode": type_code,
        "ParticipantObjectTypeCodeRole": role,
    })  # fmt: skip
    _code(participant, "ParticipantObjectIDTypeCode", *id_type)


def _code(parent: ET.Element, tag: str, code: str, system: str, meaning: str) -> None:
    ET.SubElement(parent, tag, {"csd-code": code, "codeSystemName": system,
                                "originalText": meaning})  # fmt: skip


def _iso(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="milliseconds")
