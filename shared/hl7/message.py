"""A parsed inbound message: python-hl7's tree plus typed, forgiving field access.

Fields are addressed as HL7 documents them (``PID-3.4``: segment, field, component); values
come back unescaped; an absent segment or field reads as "". ``optional`` maps HL7's
"not sent" (empty) to ``None`` and the explicit null ``""`` to "" (clear the stored value).
"""

from __future__ import annotations

from dataclasses import dataclass

import hl7

from mekong.shared.hl7.errors import Hl7Error

VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2")
_NULL = '""'


@dataclass(frozen=True)
class Header:
    control_id: str
    sending_app: str
    sending_facility: str
    receiving_app: str
    receiving_facility: str
    message_type: str  # ORM^O01
    event: str
    version: str
    charset: str


class Message:
    def __init__(self, parsed: hl7.Message) -> None:
        self._msg = parsed
        self.segment_ids = [str(segment[0]) for segment in parsed]

    def get(
        self, segment: str, field: int, component: int = 1, repeat: int = 1, occurrence: int = 1
    ) -> str:
        """One component of one repetition, unescaped; "" when absent."""
        if self.segment_ids.count(segment) < occurrence:
            return ""
        try:
            value = self._msg.extract_field(segment, occurrence, field, repeat, component, 1)
        except (IndexError, KeyError):
            return ""
        return str(value)

    def optional(
        self, segment: str, field: int, component: int = 1, occurrence: int = 1
    ) -> str | None:
        value = self.get(segment, field, component, occurrence=occurrence)
        if value == _NULL:
            return ""
        return value or None

    def repeats(self, segment: str, field: int, occurrence: int = 1) -> int:
        """How many repetitions a field has (0 when empty)."""
        try:
            value = self._msg.segments(segment)(occurrence)(field)
        except (IndexError, KeyError):
            return 0
        if value and isinstance(value[0], hl7.Repetition):
            return len(value)
        return 1 if str(value) else 0

    def header(self) -> Header:
        return Header(
            control_id=self.get("MSH", 10),
            sending_app=self.get("MSH", 3),
            sending_facility=self.get("MSH", 4),
            receiving_app=self.get("MSH", 5),
            receiving_facility=self.get("MSH", 6),
            message_type="^".join(p for p in (self.get("MSH", 9), self.get("MSH", 9, 2)) if p),
            event=self.get("MSH", 9, 2),
            version=self.get("MSH", 12),
            charset=self.get("MSH", 18),
        )


def parse(text: str) -> Message:
    """Parse a decoded message; Hl7Error AR 100 when it is not HL7 v2."""
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    if not text.startswith("MSH") or len(text) < 8:
        raise Hl7Error("AR", "100", "not an HL7 v2 message: it must begin with an MSH segment",
                       "MSH")  # fmt: skip
    try:
        parsed = hl7.parse(text)
    except Exception as exc:  # python-hl7 raises assorted errors on garbage
        raise Hl7Error("AR", "100", f"the message cannot be parsed: {exc}", "MSH") from None
    return Message(parsed)


def check_header(header: Header) -> None:
    """Refuse a message the receiver cannot identify or does not speak."""
    if not header.control_id:
        raise Hl7Error("AR", "101", "MSH-10 (message control ID) is required", "MSH-10")
    if not header.message_type:
        raise Hl7Error("AR", "101", "MSH-9 (message type) is required", "MSH-9")
    if header.version not in VERSIONS:
        raise Hl7Error(
            "AR",
            "203",
            f"HL7 version {header.version!r} is not supported; use one of {', '.join(VERSIONS)}",
            "MSH-12",
        )


def raw_header(text: str) -> Header:
    """The MSH fields of a message python-hl7 could not parse, split by hand (for the ACK and
    the log); empty fields where the text gives none."""
    first = text.replace("\n", "\r").split("\r", 1)[0]
    if not first.startswith("MSH") or len(first) < 4:
        return Header("", "", "", "", "", "", "", "", "")
    fields = ["MSH", *first[4:].split(first[3])]  # fields[n] is MSH-n from MSH-2 on
    fields.insert(1, first[3])
    component = fields[2][:1] or "^"

    def get(n: int) -> str:
        return fields[n] if n < len(fields) else ""

    event = get(9).split(component)[1] if component in get(9) else ""
    return Header(
        get(10), get(3), get(4), get(5), get(6), "^".join(get(9).split(component)[:2]),
        event, get(12), get(18),
    )  # fmt: skip
