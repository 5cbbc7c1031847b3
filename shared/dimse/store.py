"""C-STORE SCP: hand the received bytes, undecoded, to the archive; answer after it commits."""

from __future__ import annotations

import re

from pydicom.dataset import Dataset
from pynetdicom.events import Event

from mekong.shared.archive import Failure
from mekong.shared.dimse import status
from mekong.shared.dimse.services import Services, calling_ae

_FAILURE_STATUS = {
    Failure.INVALID: status.CANNOT_UNDERSTAND,
    Failure.OUT_OF_RESOURCES: status.OUT_OF_RESOURCES,
    Failure.INTERNAL: status.OUT_OF_RESOURCES,
}


def handle_store(event: Event, services: Services) -> Dataset | int:
    caller = calling_ae(event)
    if not services.policy.allows(caller, "store"):
        return _status(status.NOT_AUTHORIZED, f"AE '{caller}' may not store to this node")
    result = services.archive.store_blocking(
        event.encoded_dataset(include_meta=True),
        source=caller,
        expected_sop_uid=str(event.request.AffectedSOPInstanceUID or ""),
    )
    if result.ok:
        return status.SUCCESS
    return _status(_FAILURE_STATUS[result.failure], result.message)  # type: ignore[index]


def _status(code: int, comment: str) -> Dataset:
    response = Dataset()
    response.Status = code
    # LO: at most 64 characters, no backslash or control characters (exception texts have both)
    response.ErrorComment = re.sub(r"[\x00-\x1f\x7f\\]+", " ", comment).strip()[:64]
    return response
