"""Domain errors, each carrying how HL7 (table 0357 code) and HTTP (status) report it."""

from __future__ import annotations


class DomainError(Exception):
    """Input the RIS cannot apply. ``field`` names where (``PID-3``, ``patient.id``)."""

    hl7_code = "207"  # application internal error
    http_status = 500
    app_code = "ERROR"

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(DomainError):
    """A value has the wrong form (a date that is not YYYYMMDD, an AE title too long)."""

    hl7_code = "102"  # data type error
    http_status = 400
    app_code = "INVALID_VALUE"


class Missing(DomainError):
    """A required value is absent."""

    hl7_code = "101"  # required field missing
    http_status = 400
    app_code = "REQUIRED_FIELD_MISSING"


class UnknownCode(DomainError):
    """A coded value is not one of the allowed ones (sex, priority, order status)."""

    hl7_code = "103"  # table value not found
    http_status = 400
    app_code = "UNKNOWN_CODE"


class NotFound(DomainError):
    """The order or patient named does not exist."""

    hl7_code = "204"  # unknown key identifier
    http_status = 404
    app_code = "NOT_FOUND"


class Duplicate(DomainError):
    """A new record would reuse a key (accession, SPS ID, placer number)."""

    hl7_code = "205"  # duplicate key identifier
    http_status = 409
    app_code = "DUPLICATE_KEY"


class IllegalTransition(DomainError):
    """A status change the status machine does not allow (e.g. cancel a completed order)."""

    hl7_code = "206"  # application record locked: its state does not allow the change
    http_status = 409
    app_code = "ILLEGAL_TRANSITION"
