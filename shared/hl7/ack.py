"""Acknowledgements (original mode): MSH + MSA, plus ERR on AE / AR.

MSA-1 AA/AE/AR, MSA-2 the inbound MSH-10, MSA-3 the error text. ERR-2 the location
(``PID^1^3``), ERR-3 the table 0357 code (``101^Required field missing^HL70357``), ERR-4 ``E``,
ERR-5 Mekong's error code, ERR-8 the message for a person. ERR-1 (the v2.3/2.4 form) is filled
too when the sender speaks v2.3 or v2.4.
"""

from __future__ import annotations

import re
import time
import uuid

from mekong.shared.hl7.errors import TABLE_0357, Hl7Error
from mekong.shared.hl7.message import Header

_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}
_LOCATION = re.compile(r"^([A-Z0-9]{3})-(\d+)(?:\.(\d+))?$")


def escape(value: str) -> str:
    """Escape the separators (non-ASCII text is kept as is, not turned into \\Xhh\\)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in value).replace("\r", " ").replace("\n", " ")


def build_ack(header: Header, error: Hl7Error | None, application: str, facility: str) -> str:
    code = error.ack if error else "AA"
    version = header.version if header.version else "2.5.1"
    msh = [
        "MSH", "^~\\&", escape(application), escape(facility), escape(header.sending_app),
        escape(header.sending_facility), time.strftime("%Y%m%d%H%M%S%z"), "",
        f"ACK^{escape(header.event)}^ACK" if header.event else "ACK", uuid.uuid4().hex[:20], "P",
        escape(version), "", "", "", "", "", escape(header.charset),
    ]  # fmt: skip
    msa = ["MSA", code, escape(header.control_id)]
    segments = ["|".join(msh).rstrip("|"), "|".join(msa)]
    if error:
        msa.append(escape(error.message[:80]))
        segments[1] = "|".join(msa)
        segments.append(_err(error, version))
    return "\r".join(segments) + "\r"


def _err(error: Hl7Error, version: str) -> str:
    location = _LOCATION.match(error.location)
    erl = ""
    if location:
        segment, field, component = location.groups()
        erl = f"{segment}^1^{field}" + (f"^1^{component}" if component else "")
    code = f"{error.code}^{TABLE_0357.get(error.code, '')}^HL70357"
    err1 = ""
    if location and version.startswith(("2.3", "2.4")):
        segment, field, _ = location.groups()
        err1 = f"{segment}^1^{field}^{error.code}&{TABLE_0357.get(error.code, '')}&HL70357"
    app_code = f"{error.app_code}^^MEKONG" if error.app_code else ""
    fields = ["ERR", err1, erl, code, "E", app_code, "", "", escape(error.message)]
    return "|".join(fields)
