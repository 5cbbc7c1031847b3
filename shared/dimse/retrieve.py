"""C-GET and C-MOVE SCP: find the instances, then send each in a syntax the receiver took."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.presentation import PresentationContext, build_context

from mekong.shared.db.index import StoredInstanceRef
from mekong.shared.dicom.transcode import dataset_for
from mekong.shared.dicom.transfer_syntaxes import NATIVE
from mekong.shared.dimse import status
from mekong.shared.dimse.identifiers import IdentifierError, query_from
from mekong.shared.dimse.services import Services, calling_ae

log = logging.getLogger(__name__)
_MAX_CONTEXTS = 128


def handle_get(event: Event, services: Services) -> Iterator[Any]:
    caller = calling_ae(event)
    refs = _matching(event, services) if services.policy.allows(caller, "get") else None
    if refs is None:
        # pynetdicom wants a sub-operation count before any status
        yield 1
        if services.policy.allows(caller, "get"):
            yield (
                _failure(status.IDENTIFIER_DOES_NOT_MATCH, "retrieve identifier is not valid"),
                None,
            )
        else:
            yield _failure(status.NOT_AUTHORIZED, f"AE '{caller}' may not retrieve"), None
        return
    yield len(refs)
    _audit(event, services, refs, "C-GET")
    yield from _send_each(event, services, refs, lambda: event.assoc)


def handle_move(event: Event, services: Services) -> Iterator[Any]:
    caller = calling_ae(event)
    if not services.policy.allows(caller, "move"):
        # pynetdicom can only refuse before the destination as "Move Destination unknown"
        log.warning("C-MOVE refused: AE %r may not retrieve", caller)
        yield None, None  # pynetdicom answers "Move Destination unknown"
        return
    destination = services.policy.known(str(event.move_destination))
    if destination is None:
        log.warning("C-MOVE from %s to unknown AE %r", caller, event.move_destination)
        yield None, None
        return
    refs = _matching(event, services)
    yield destination.host, destination.port, {"contexts": _contexts_for(refs or [])}
    if refs is None:
        yield 1
        yield _failure(status.IDENTIFIER_DOES_NOT_MATCH, "retrieve identifier is not valid"), None
        return
    yield len(refs)
    _audit(event, services, refs, "C-MOVE", destination=destination.title)
    yield from _send_each(event, services, refs, lambda: _sub_association(event, destination.title))


def _audit(event: Event, services: Services, refs: list, service: str, **detail: str) -> None:  # type: ignore[type-arg]
    identifier = event.identifier
    services.record(
        event, "images.retrieve", object=str(identifier.get("StudyInstanceUID", "")),
        patient_id=str(identifier.get("PatientID", "")), service=service, instances=len(refs),
        **detail,
    )  # fmt: skip


def _matching(event: Event, services: Services) -> list[StoredInstanceRef] | None:
    try:
        query = query_from(event.identifier)
    except IdentifierError:
        return None
    return services.run(services.index.instances(query))


def _send_each(event: Event, services: Services, refs, association) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    for ref in refs:
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        try:
            accepted = _accepted_syntaxes(association(), ref.sop_class_uid)
            dataset = dataset_for(services.archive.blobs.path_for(ref.digest), accepted)
        except Exception as exc:  # no usable syntax, unreadable blob, codec error
            log.warning("cannot send %s: %s", ref.sop_uid, exc)
            # pynetdicom counts a pending status without a Dataset as one failed
            # sub-operation and goes on; a failure status would end the whole request
            yield status.PENDING, ref.sop_uid
            continue
        yield status.PENDING, dataset


def _accepted_syntaxes(assoc: Association | None, sop_class_uid: str) -> list[str]:
    if assoc is None:
        return list(NATIVE)
    return [
        str(cx.transfer_syntax[0])
        for cx in assoc.accepted_contexts
        if cx.abstract_syntax == sop_class_uid and cx.transfer_syntax
    ]


def _contexts_for(refs: list[StoredInstanceRef]) -> list[PresentationContext]:
    """One context per SOP class offering the stored syntaxes first, then native ones."""
    syntaxes: dict[str, list[str]] = {}
    for ref in refs:
        offered = syntaxes.setdefault(ref.sop_class_uid, [])
        if ref.transfer_syntax not in offered:
            offered.insert(0, ref.transfer_syntax)
    contexts = []
    for sop_class, offered in list(syntaxes.items())[:_MAX_CONTEXTS]:
        offered += [s for s in NATIVE if s not in offered]
        contexts.append(build_context(sop_class, offered))
    return contexts


def _sub_association(event: Event, destination: str) -> Association | None:
    """The store association pynetdicom opened for this C-MOVE (it does not hand it over)."""
    for assoc in event.assoc.ae.active_associations:
        if assoc.is_requestor and assoc.is_established and assoc.acceptor.ae_title == destination:
            return assoc
    return None


def _failure(code: int, comment: str) -> Dataset:
    response = Dataset()
    response.Status = code
    response.ErrorComment = comment[:64]
    return response
