"""MPPS SCP: Modality Performed Procedure Step SOP Class 1.2.840.10008.3.1.2.3.3, N-CREATE and
N-SET (RIS-5.3, RIS-5.4, FLOW-1; PS3.4 F.7; IHE SWF RAD-6/RAD-7).

Thin handlers: check the AE policy (an AE allowed to ``store`` may report performed steps),
read the attribute list (:mod:`.mpps_attributes`), apply it to the RIS in one durable
transaction on this association thread (:mod:`mekong.shared.ris.mpps`; committed, WAL
fsync'd, before the response), map the outcome to a status and audit it (``mpps.create``,
``mpps.set``). Order status changes go to the outbound HL7 outbox (:func:`connect_outbound`).

Statuses: 0x0000 success; 0x0111 duplicate SOP instance; 0x0112 no such SOP instance; 0x0106
invalid attribute value; 0x0120 / 0x0121 missing attribute / value; 0x0110 processing failure
— with Error ID 0xA710 when the step is already COMPLETED or DISCONTINUED ("may no longer be
updated", PS3.4 F.7.2.2); 0x0124 not authorized. Failures carry an Error Comment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydicom.dataset import Dataset
from pynetdicom.events import Event
from sqlalchemy import Connection

from mekong.shared.dicom import uids
from mekong.shared.dimse import status
from mekong.shared.dimse.mpps_attributes import (
    INVALID_ATTRIBUTE_VALUE,
    MISSING_ATTRIBUTE,
    MppsAttributeError,
    check_create,
    merged,
    performed_step,
)
from mekong.shared.dimse.services import Services, calling_ae
from mekong.shared.ris import events, mpps, workflow
from mekong.shared.ris.errors import (
    DomainError,
    Duplicate,
    Invalid,
    Missing,
    NotFound,
    UnknownCode,
)

log = logging.getLogger(__name__)

PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_SOP_INSTANCE = 0x0112
MAY_NO_LONGER_BE_UPDATED = 0xA710  # Error ID with 0x0110 (PS3.4 F.7.2.2)

Response = tuple[int | Dataset, Dataset | None]
_connected: list[bool] = []
Work = Callable[[list[str]], mpps.PpsOutcome]


def connect_outbound() -> None:
    """Order status changes made by MPPS in this process reach the HIS: the outbound HL7
    hook (:func:`mekong.shared.ris.workflow.on_order_status_changed`) listens to
    :func:`mekong.shared.ris.events.status_changed` and writes the outbox row inside the MPPS
    transaction. Called by every DICOM process at start (MPPS may arrive in any); once."""
    if not _connected:
        events.on_status_changed(workflow.on_order_status_changed)
        _connected.append(True)


def handle_n_create(event: Event, services: Services) -> Response:
    request = event.request
    sop_uid = str(request.AffectedSOPInstanceUID or uids.new_uid())
    refused = _refused(event, services, "mpps.create", sop_uid)
    if refused is not None:
        return refused

    def work(changes: list[str]) -> mpps.PpsOutcome:
        attributes = event.attribute_list  # decoded and checked before the transaction
        check_create(attributes)
        step = performed_step(attributes, sop_uid, calling_ae(event))
        return services.index.transaction_blocking(
            lambda conn: mpps.create_pps(conn, step, changes)
        )

    code, answer = _apply(event, services, "mpps.create", sop_uid, work)
    if code == status.SUCCESS and request.AffectedSOPInstanceUID is None:
        answer = Dataset()  # the requester left the UID to us: tell it which one we gave
        answer.AffectedSOPInstanceUID = sop_uid
    return code, answer


def handle_n_set(event: Event, services: Services) -> Response:
    sop_uid = str(event.request.RequestedSOPInstanceUID or "")
    refused = _refused(event, services, "mpps.set", sop_uid)
    if refused is not None:
        return refused

    def work(changes: list[str]) -> mpps.PpsOutcome:
        modifications = event.modification_list

        def apply(conn: Connection) -> mpps.PpsOutcome:  # read, merge, write: one transaction
            attributes = merged(mpps.stored_attributes(conn, sop_uid), modifications)
            return mpps.update_pps(conn, performed_step(attributes, sop_uid, ""), changes)

        return services.index.transaction_blocking(apply)

    return _apply(event, services, "mpps.set", sop_uid, work)


def _refused(event: Event, services: Services, action: str, sop_uid: str) -> Response | None:
    caller = calling_ae(event)
    if services.policy.allows(caller, "store"):
        return None
    log.warning("%s refused: AE %r may not report performed procedure steps", action, caller)
    services.record(event, action, "failure", object=sop_uid, error="not authorized")
    return _failure(status.NOT_AUTHORIZED, f"AE '{caller}' may not report procedure steps")


def _apply(event: Event, services: Services, action: str, sop_uid: str, work: Work) -> Response:
    """Run ``work`` (which commits one RIS transaction); the response and audit event."""
    changes: list[str] = []
    try:
        outcome = work(changes)
    except (MppsAttributeError, DomainError) as exc:
        code, comment, error_id = _failure_of(exc)
        log.warning("%s %s from %s refused: %s", action, sop_uid, calling_ae(event), comment)
        services.record(event, action, "failure", object=sop_uid, error=comment)
        return _failure(code, comment, error_id)
    except Exception as exc:
        log.exception("%s %s from %s failed", action, sop_uid, calling_ae(event))
        services.record(event, action, "failure", object=sop_uid, error="processing failure")
        return _failure(PROCESSING_FAILURE, f"processing failure: {exc}")
    log.info("%s %s from %s: %s", action, sop_uid, calling_ae(event), "; ".join(changes))
    services.record(
        event, action, object=sop_uid, patient_id=outcome.patient_id,
        status=outcome.status.value, accessions=list(outcome.accessions),
        unscheduled=outcome.unscheduled,
    )  # fmt: skip
    return status.SUCCESS, None


def _failure_of(exc: Exception) -> tuple[int, str, int | None]:
    if isinstance(exc, MppsAttributeError):
        return exc.status, exc.comment, None
    assert isinstance(exc, DomainError)
    if isinstance(exc, mpps.PpsFinal):  # the wording of PS3.4 F.7.2.2
        comment = "Performed Procedure Step Object may no longer be updated"
        return PROCESSING_FAILURE, comment, MAY_NO_LONGER_BE_UPDATED
    codes: list[tuple[type[DomainError], int]] = [
        (Duplicate, DUPLICATE_SOP_INSTANCE), (NotFound, NO_SUCH_SOP_INSTANCE),
        (Missing, MISSING_ATTRIBUTE), (Invalid, INVALID_ATTRIBUTE_VALUE),
        (UnknownCode, INVALID_ATTRIBUTE_VALUE),
    ]  # fmt: skip
    code = next((c for kind, c in codes if isinstance(exc, kind)), PROCESSING_FAILURE)
    return code, exc.message, None


def _failure(code: int, comment: str, error_id: int | None = None) -> Response:
    response = Dataset()
    response.Status = code
    response.ErrorComment = comment[:64]
    if error_id is not None:
        response.ErrorID = error_id
    return response, None
