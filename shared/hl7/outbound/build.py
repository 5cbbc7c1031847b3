"""Outbound status messages (RIS-6.2): ORM^O01 (v2.3.1) or OMI^O23 (v2.5.1, IHE RAD-4 form)
with ORC-1 ``SC``, built once when the change happens and stored in the outbox as sent.

| Mekong event | ORC-5 | OBR-25 | ORC-16 (event code) |
|---|---|---|---|
| ARRIVED | SC | I | ARRIVED^Patient arrived^MEKONG |
| IN_PROGRESS | IP | I | IN_PROGRESS^Exam started^MEKONG |
| COMPLETED | CM | R when images are stored | COMPLETED^Exam completed^MEKONG |
| DISCONTINUED | DC | X | DISCONTINUED^Exam discontinued^MEKONG |
| CANCELLED | CA | X | CANCELLED^Order cancelled^MEKONG |
| IMAGES_AVAILABLE | the order's status | R | IMAGES_AVAILABLE^Images available^MEKONG |

With stored images an OBX (RP) carries the viewer link ``<base>/viewer?StudyInstanceUIDs=…``
and ZDS-1 (ORM) or IPC-3 (OMI) the Study Instance UID.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mekong.shared.hl7.ack import escape

EVENTS = {
    "ARRIVED": ("SC", "I", "Patient arrived"),
    "IN_PROGRESS": ("IP", "I", "Exam started"),
    "COMPLETED": ("CM", "", "Exam completed"),
    "DISCONTINUED": ("DC", "X", "Exam discontinued"),
    "CANCELLED": ("CA", "X", "Order cancelled"),
    "IMAGES_AVAILABLE": ("", "R", "Images available"),
}
ORDER_STATUS_CODES = {  # RIS status → ORC-5 (HL7 table 0038)
    "SCHEDULED": "SC", "ARRIVED": "SC", "IN_PROGRESS": "IP", "COMPLETED": "CM",
    "DISCONTINUED": "DC", "CANCELLED": "CA",
}  # fmt: skip
VERSIONS = {"ORM^O01": "2.3.1", "OMI^O23": "2.5.1"}


@dataclass(frozen=True)
class StatusEvent:
    """A snapshot of an order at the moment its status changed (or images arrived)."""

    event: str  # a key of EVENTS
    status: str  # the order's status after the change
    accession: str
    placer_number: str = ""
    filler_number: str = ""
    patient_id: str = ""
    issuer: str = ""
    patient_name: str = ""
    birth_date: str = ""
    sex: str = ""
    patient_class: str = ""
    location: str = ""
    referring_physician: str = ""
    procedure_id: str = ""
    service_code: str = ""
    description: str = ""
    procedure_study_uid: str = ""
    sps_id: str = ""
    modality: str = ""
    station_ae: str = ""
    scheduled: str = ""  # YYYYMMDDHHMMSS of the step
    study_uids: tuple[str, ...] = ()  # stored studies linked to the order
    at: float = 0.0


@dataclass(frozen=True)
class Addressing:
    """MSH-3..6 and the viewer base of one destination."""

    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    viewer_url: str = ""


def viewer_link(base: str, study_uids: tuple[str, ...]) -> str:
    return f"{base.rstrip('/')}/viewer?StudyInstanceUIDs={','.join(study_uids)}"


def build_message(event: StatusEvent, message_type: str, control_id: str, to: Addressing) -> str:
    """The message text, segments ended by CR, UTF-8 declared in MSH-18."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(event.at or time.time()))
    segments = [
        _msh(message_type, control_id, stamp, to),
        _pid(event),
        _pv1(event),
        _orc(event, stamp),
    ]
    if message_type == "OMI^O23":
        segments += [_tq1(event), _obr(event, stamp), *_obx(event, to), _ipc(event)]
    else:
        segments += [_obr(event, stamp), *_zds(event), *_obx(event, to)]
    return "\r".join(segments) + "\r"


def _components(value: str) -> str:
    """A composite value (PN, PL) whose parts are already split by ``^``: each part escaped."""
    return "^".join(escape(part) for part in value.split("^"))


def _join(name: str, fields: dict[int, str]) -> str:
    """A segment from {field number: already escaped value}."""
    last = max((n for n, v in fields.items() if v), default=0)
    return "|".join([name] + [fields.get(n, "") for n in range(1, last + 1)])


def _msh(message_type: str, control_id: str, stamp: str, to: Addressing) -> str:
    kind = "OMI^O23^OMI_O23" if message_type == "OMI^O23" else "ORM^O01"
    fields = [
        "MSH",
        "^~\\&",
        "MEKONG",
        escape(to.sending_facility),
        escape(to.receiving_application),
        escape(to.receiving_facility),
        stamp,
        "",
        kind,
        control_id,
        "P",
        VERSIONS[message_type],
        "",
        "",
        "AL",
        "NE",
        "",
        "UNICODE UTF-8",
    ]
    return "|".join(fields)  # fmt: skip


def _pid(e: StatusEvent) -> str:
    identifier = escape(e.patient_id) + (f"^^^{escape(e.issuer)}" if e.issuer else "")
    return _join("PID", {1: "1", 3: identifier, 5: _components(e.patient_name),
                         7: escape(e.birth_date), 8: escape(e.sex)})  # fmt: skip


def _pv1(e: StatusEvent) -> str:
    return _join("PV1", {1: "1", 2: escape(e.patient_class) or "U", 3: _components(e.location),
                         8: _xcn(e.referring_physician)})  # fmt: skip


def _xcn(name: str) -> str:
    """A person as HL7 XCN: no ID, then the DICOM PN components (family^given^middle)."""
    return "^" + _components(name) if name else ""


def _orc(e: StatusEvent, stamp: str) -> str:
    status, _, text = EVENTS[e.event]
    status = status or ORDER_STATUS_CODES.get(e.status, "")
    return _join("ORC", {1: "SC", 2: escape(e.placer_number), 3: escape(e.filler_number),
                         5: status, 9: stamp, 16: f"{e.event}^{text}^MEKONG"})  # fmt: skip


def _obr(e: StatusEvent, stamp: str) -> str:
    _, result, _ = EVENTS[e.event]
    if e.event == "COMPLETED" and e.study_uids:
        result = "R"
    service = escape(e.service_code) + (f"^{escape(e.description)}" if e.description else "")
    return _join("OBR", {
        1: "1", 2: escape(e.placer_number), 3: escape(e.filler_number), 4: service,
        18: escape(e.accession), 19: escape(e.procedure_id), 20: escape(e.sps_id),
        21: escape(e.station_ae), 22: stamp, 24: escape(e.modality), 25: result,
    })  # fmt: skip


def _tq1(e: StatusEvent) -> str:
    return _join("TQ1", {1: "1", 7: e.scheduled})


def _zds(e: StatusEvent) -> list[str]:
    study = _study(e)
    return [_join("ZDS", {1: f"{study}^^Application^DICOM"})] if study else []


def _ipc(e: StatusEvent) -> str:
    return _join("IPC", {1: escape(e.accession), 2: escape(e.procedure_id), 3: _study(e),
                         4: escape(e.sps_id), 5: escape(e.modality),
                         9: escape(e.station_ae)})  # fmt: skip


def _obx(e: StatusEvent, to: Addressing) -> list[str]:
    if not e.study_uids or e.event not in ("IMAGES_AVAILABLE", "COMPLETED") or not to.viewer_url:
        return []
    link = escape(viewer_link(to.viewer_url, e.study_uids))
    return [_join("OBX", {1: "1", 2: "RP", 3: "VIEWER^Image viewer^MEKONG",
                          5: f"{link}^MEKONG^IM^URL", 11: "F"})]  # fmt: skip


def _study(e: StatusEvent) -> str:
    return e.study_uids[0] if e.study_uids else e.procedure_study_uid
