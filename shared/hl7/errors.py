"""An HL7 processing error: the ACK code, the table 0357 code and where it happened."""

from __future__ import annotations

from dataclasses import dataclass

TABLE_0357 = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}


@dataclass
class Hl7Error(Exception):
    """``ack`` is AE (application error: fix the data) or AR (rejected: fix the message)."""

    ack: str
    code: str
    message: str
    location: str = ""  # "PID-3", "MSH-12"
    app_code: str = ""  # Mekong's own code, sent in ERR-5

    def __str__(self) -> str:
        return f"{self.ack} {self.code} {self.location}: {self.message}"
