"""C-STORE SCP (pynetdicom side): hand the received bytes, undecoded, to the archive; answer
after it commits. The front door (``frontdoor.py``) answers storage associations the same way."""

from __future__ import annotations

import logging
import re

from pydicom.dataset import Dataset
from pynetdicom.events import Event

from mekong.shared.archive import Failure
from mekong.shared.dimse import status
from mekong.shared.dimse.services import Services, calling_ae

log = logging.getLogger(__name__)

FAILURE_STATUS = {
    Failure.INVALID: status.CANNOT_UNDERSTAND,
    Failure.OUT_OF_RESOURCES: status.OUT_OF_RESOURCES,
    Failure.INTERNAL: status.OUT_OF_RESOURCES,
}


def handle_store(event: Event, services: Services) -> Dataset | int:
    caller = calling_ae(event)
    if not services.policy.allows(caller, "store"):
        log.warning("C-STORE refused: AE %r may not store", caller)
        return _status(status.NOT_AUTHORIZED, f"AE '{caller}' may not store to this node")
    result = services.archive.store_blocking(
        event.encoded_dataset(include_meta=True),
        source=caller,
        expected_sop_uid=str(event.request.AffectedSOPInstanceUID or ""),
    )
    if result.ok:
        return status.SUCCESS
    return _status(FAILURE_STATUS[result.failure or Failure.INTERNAL], result.message)


def status_comment(text: str) -> str:
    """An Error Comment (LO): at most 64 characters, no backslash or control characters
    (exception texts have both)."""
    return re.sub(r"[\x00-\x1f\x7f\\]+", " ", text).strip()[:64]


def _status(code: int, comment: str) -> Dataset:
    response = Dataset()
    response.Status = code
    response.ErrorComment = status_comment(comment)
    return response
