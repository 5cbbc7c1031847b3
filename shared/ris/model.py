"""What a HIS (HL7 or REST) asks the RIS to record, before validation.

``None`` means "not given": on a change the stored value is kept. ``""`` clears it (HL7 ``""``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PatientData:
    patient_id: str
    issuer: str = ""
    name: str | None = None  # DICOM PN: Family^Given^Middle^Prefix^Suffix
    birth_date: str | None = None  # YYYYMMDD
    sex: str | None = None  # HL7 table 0001
    address: str | None = None
    phone: str | None = None


@dataclass
class VisitData:
    visit_number: str | None = None
    patient_class: str | None = None  # I inpatient, O outpatient, E emergency
    location: str | None = None
    department: str | None = None
    referring_physician: str | None = None


@dataclass
class OrderData:
    accession: str | None = None
    placer_number: str | None = None
    filler_number: str | None = None
    priority: str | None = None  # STAT, HIGH, ROUTINE, MEDIUM, LOW
    ordering_physician: str | None = None
    reason: str | None = None


@dataclass
class ProcedureData:
    procedure_id: str | None = None
    service_code: str | None = None
    description: str | None = None
    study_uid: str | None = None


@dataclass
class StepData:
    sps_id: str | None = None
    station_ae: str | None = None
    modality: str | None = None
    start_date: str | None = None  # YYYYMMDD
    start_time: str | None = None  # HHMMSS
    room: str | None = None
    performing_physician: str | None = None
    description: str | None = None


@dataclass
class OrderRequest:
    patient: PatientData
    order: OrderData = field(default_factory=OrderData)
    procedure: ProcedureData = field(default_factory=ProcedureData)
    steps: list[StepData] = field(default_factory=list)
    visit: VisitData | None = None
    source: str = ""  # who sent it: "HIS^BVCR" (MSH-3^MSH-4) or "REST"


@dataclass(frozen=True)
class OrderKey:
    """How a change names an existing order: accession first, then placer, then filler."""

    accession: str = ""
    placer_number: str = ""
    filler_number: str = ""
    source: str = ""

    def describe(self) -> str:
        for label, value in (
            ("accession", self.accession),
            ("placer order number", self.placer_number),
            ("filler order number", self.filler_number),
        ):
            if value:
                return f"{label} {value!r}"
        return "no order number"
