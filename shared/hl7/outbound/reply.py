"""Reading the receiver's acknowledgement of an outbound message (RIS-6.2)."""

from __future__ import annotations

from dataclasses import dataclass

from mekong.shared.hl7 import charset
from mekong.shared.hl7.errors import Hl7Error
from mekong.shared.hl7.message import parse

ACCEPTED = ("AA", "CA")
REFUSED = ("AE", "AR", "CE", "CR")


@dataclass(frozen=True)
class Reply:
    code: str  # MSA-1
    control_id: str  # MSA-2: must be the MSH-10 we sent
    text: str  # ERR-8, else ERR-3.2 / MSA-3: what the receiver says is wrong
    raw: str


class BadReply(ValueError):
    """The answer is not an ACK to our message (the attempt counts as failed)."""


def read_reply(block: bytes, control_id: str) -> Reply:
    try:
        text, _ = charset.decode(block)
        msg = parse(text)
    except Hl7Error as exc:
        raise BadReply(f"the answer is not an HL7 ACK: {exc.message}") from None
    code = msg.get("MSA", 1).strip().upper()
    answered = msg.get("MSA", 2).strip()
    if code not in ACCEPTED + REFUSED:
        raise BadReply(f"the answer has no MSA-1 acknowledgement code (got {code!r})")
    if answered != control_id:
        raise BadReply(f"the ACK is for message {answered!r}, not {control_id!r}")
    detail = msg.get("ERR", 8) or msg.get("ERR", 3, 2) or msg.get("MSA", 3)
    return Reply(code, answered, detail, text)
