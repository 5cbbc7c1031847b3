"""QR-label keys of orders (FEAT-5.2–5.6, RIS-3.3): issue, validate, map a study by its key.

**The key** is 8 decimal digits: 7 random digits (the first never 0) and a Damm check digit.
Why digits: a keyboard-wedge scanner *types* the QR content into the modality as key presses,
and only digits survive every case met at a clinic — Caps Lock (letters change case), a
keyboard layout other than the scanner's (AZERTY puts digits on shifted keys, but scanners have
a per-layout setting for digits, not for every letter), a Vietnamese input method left on
(Telex turns ``s f r x j w`` and doubled vowels into accents) and fields that take digits only
(Patient ID on some consoles). Why Damm: one table, and it detects **every** single-digit
substitution and **every** adjacent transposition (Luhn misses 09↔90), without the extra
check characters ISO 7064 MOD 11-2 (``X``) or Crockford's mod 37 (``*~$=U``, typed differently
per keyboard layout) need. Why random rather than derived from the order's row id:
a mistyped key that still passes the check (a jump transposition, two errors) lands on an
arbitrary order of the whole key space, not on a neighbour of today's orders.

The key is stored (``ris_label``) the first time the order's label is printed, so it never
changes; the QR code holds the 8 digits only (numeric mode: the smallest QR symbol).

**Mapping** (in the reconciliation transaction): for a study from a *key device* (a calling
AE title configured with the DICOM attribute that carries the scanned key, and an optional
regex), a value shaped like a key is a key, nothing else: a bad check digit, a key no order
has, a key whose order is cancelled, or a key whose images carry another patient's Patient
ID (a patient the RIS knows, or another ID than the key's first study had) leaves the study
unmatched with that reason. A value not shaped like a key falls through to the ordinary match
cascade (a technician may have typed the accession number).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from mekong.shared.db.ris_schema import ris_label, ris_order, ris_patient
from mekong.shared.ris.errors import NotFound
from mekong.shared.ris.status import Status

KEY_LENGTH = 8
_SHAPE = re.compile(r"^\d{8}$")
_SEPARATORS = re.compile(r"[\s\-.]")

# The Damm quasigroup of order 10 (weakly totally anti-symmetric).
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

BAD_CHECK_DIGIT = "LABEL_CHECK_DIGIT"
UNKNOWN_LABEL = "LABEL_UNKNOWN"
OTHER_PATIENT = "LABEL_OTHER_PATIENT"
LABEL_CANCELLED = "ORDER_CANCELLED"


def damm(digits: str) -> int:
    """The Damm interim digit of ``digits`` (0 for a string that ends in its check digit)."""
    interim = 0
    for char in digits:
        interim = _DAMM[interim][ord(char) - 48]
    return interim


def make_key(body: str) -> str:
    """``body`` (digits) followed by its check digit."""
    return body + str(damm(body))


def normalize(text: str) -> str:
    """What a person or scanner may add around a key: spaces, '-' and '.' are dropped."""
    return _SEPARATORS.sub("", text or "")


def is_key_shaped(text: str) -> bool:
    return bool(_SHAPE.match(normalize(text)))


def is_valid(text: str) -> bool:
    """Shaped like a key and its check digit is right."""
    key = normalize(text)
    return bool(_SHAPE.match(key)) and damm(key) == 0


def display(key: str) -> str:
    """The human-readable form printed under the QR code: ``1234 5678``."""
    return f"{key[:4]} {key[4:]}"


def new_key() -> str:
    return make_key(str(secrets.randbelow(9_000_000) + 1_000_000))


# --- issuing ----------------------------------------------------------------------------------


def key_of_order(conn: Connection, order_fk: int) -> str:
    """The order's key, issued (stored) on first use; a random collision is drawn again."""
    found = conn.execute(select(ris_label.c.key).where(ris_label.c.order_fk == order_fk))
    key = found.scalar_one_or_none()
    if key is not None:
        return str(key)
    while True:
        key = new_key()
        taken = conn.execute(select(ris_label.c.id).where(ris_label.c.key == key)).first()
        if taken is None:
            break
    conn.execute(ris_label.insert().values(key=key, order_fk=order_fk, created_at=time.time()))
    return key


def order_of_key(conn: Connection, key: str) -> Any | None:
    """The ``ris_order`` row of a key, with the label columns, or None."""
    query = (
        select(ris_order, ris_label.c.seen_patient_id, ris_label.c.id.label("label_id"))
        .join(ris_label, ris_label.c.order_fk == ris_order.c.id)
        .where(ris_label.c.key == normalize(key))
    )
    return conn.execute(query).first()


@dataclass(frozen=True)
class LabelData:
    """What a printed label shows (RIS-3.3)."""

    key: str
    accession: str
    patient_name: str  # DICOM PN as the RIS holds it (Family^Given…)
    patient_id: str
    birth_year: str
    service: str


def label_data(conn: Connection, accession: str) -> LabelData:
    """The label of the order ``accession`` (its key issued now if it had none)."""
    from mekong.shared.db.ris_schema import ris_procedure  # noqa: PLC0415 - one use

    order = conn.execute(select(ris_order).where(ris_order.c.accession == accession)).first()
    if order is None:
        raise NotFound(f"no order with accession {accession!r}", "accession")
    patient = conn.execute(select(ris_patient).where(ris_patient.c.id == order.patient_fk)).one()
    procedure = conn.execute(
        select(ris_procedure).where(ris_procedure.c.order_fk == order.id)
    ).first()
    service = ""
    if procedure is not None:
        service = procedure.description or procedure.service_code
    return LabelData(key_of_order(conn, order.id), order.accession, patient.name,
                     patient.patient_id, patient.birth_date[:4], service)  # fmt: skip


# --- mapping a study by its key -----------------------------------------------------------------


@dataclass(frozen=True)
class LabelVerdict:
    """The outcome of a key: an order (``order`` set) or a refusal (``code`` and ``reason``)."""

    order: Any = None
    code: str = ""
    reason: str = ""


def judge_key(
    conn: Connection, key: str, where: str, patient_row: Any | None, patient_id: str
) -> LabelVerdict:
    """Check a key read from a study (``where``: e.g. "AccessionNumber from US_OLD").

    ``patient_row``: the RIS patient the images' own Patient ID names (None if none);
    ``patient_id``: the images' Patient ID as sent ("" when absent or when it carries the key).
    """
    key = normalize(key)
    shown = f"label key {key!r} in {where}"
    if damm(key) != 0:
        reason = f"{shown} fails its check digit (mistyped or misread)"
        return LabelVerdict(code=BAD_CHECK_DIGIT, reason=reason)
    order = order_of_key(conn, key)
    if order is None:
        return LabelVerdict(code=UNKNOWN_LABEL, reason=f"{shown} is not the key of any order")
    if order.status == Status.CANCELLED:
        reason = f"{shown} names order {order.accession}, which is CANCELLED"
        return LabelVerdict(code=LABEL_CANCELLED, reason=reason)
    owner = _owner(conn, order.patient_fk)
    if patient_row is not None and patient_row.id != owner.id:
        return LabelVerdict(code=OTHER_PATIENT, reason=(
            f"{shown} belongs to order {order.accession} of patient {owner.patient_id}, but the "
            f"images carry Patient ID {patient_id!r} of another patient"))  # fmt: skip
    seen = order.seen_patient_id
    if patient_id and seen and patient_id not in (seen, owner.patient_id):
        reason = (
            f"{shown} (order {order.accession}) was already used for images of Patient ID "
            f"{seen!r}; these carry {patient_id!r}: one patient's label used for another"
        )
        return LabelVerdict(code=OTHER_PATIENT, reason=reason)
    return LabelVerdict(order=order)


def note_use(conn: Connection, order: Any, patient_id: str) -> None:
    """Remember the Patient ID the first study mapped by the key carried."""
    values: dict[str, Any] = {"used_at": time.time()}
    if patient_id and not order.seen_patient_id:
        values["seen_patient_id"] = patient_id[:64]
    conn.execute(update(ris_label).where(ris_label.c.id == order.label_id).values(**values))


def forget_use(conn: Connection, order_fk: int) -> None:
    """A study mapped by the order's key was moved away: its Patient ID no longer counts."""
    conn.execute(update(ris_label).where(ris_label.c.order_fk == order_fk)
                 .values(seen_patient_id=""))  # fmt: skip


def _owner(conn: Connection, patient_fk: int) -> Any:
    """The order's patient after merges."""
    row = conn.execute(select(ris_patient).where(ris_patient.c.id == patient_fk)).one()
    while row.merged_into is not None:
        row = conn.execute(select(ris_patient).where(ris_patient.c.id == row.merged_into)).one()
    return row
