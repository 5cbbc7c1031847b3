"""Modality Worklist SCP: C-FIND on the Modality Worklist Information Model (RIS-5.1, RIS-5.2,
FLOW-1, PACS-6.1).

SOP class 1.2.840.10008.5.1.4.31. A thin handler: check the AE policy (``find``), turn the
identifier into a worklist query (:mod:`.worklist_keys`), run it on the RIS
(:func:`mekong.shared.ris.worklist.find_items`, read-only, from this association thread),
answer one pending response per scheduled procedure step (:mod:`.worklist_response`) and audit
the query (``worklist.query``). Bad identifiers get 0xA900 (or 0xC000 when they cannot be
decoded) with an Error Comment; the node keeps serving.

SOP Class Extended Negotiation (PS3.4 K.5.1) is answered: combined date-time matching of the
scheduled start (byte 2) and fuzzy semantic matching of person names (byte 3, done as the
accent-folded word matching of AEs configured ``--fuzzy``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from pydicom.dataset import Dataset
from pynetdicom.events import Event
from pynetdicom.sop_class import ModalityWorklistInformationFind

from mekong.shared.dimse import status
from mekong.shared.dimse.identifiers import IdentifierError
from mekong.shared.dimse.services import Services, calling_ae
from mekong.shared.dimse.worklist_keys import ParsedQuery, describe, parse_identifier
from mekong.shared.dimse.worklist_response import worklist_response
from mekong.shared.ris import worklist
from mekong.shared.ris.status import Status

log = logging.getLogger(__name__)

MWL_FIND = str(ModalityWorklistInformationFind)
PENDING_UNSUPPORTED_KEYS = 0xFF01  # matches continue; an optional key was not matched
_COMBINED_DATETIME, _FUZZY_NAMES = 1, 2  # byte offsets in the application information


def handle_worklist_find(
    event: Event, services: Services, offered: tuple[Status, ...]
) -> Iterator[tuple[int | Dataset, Dataset | None]]:
    caller = calling_ae(event)
    if not services.policy.allows(caller, "find"):
        log.warning("worklist C-FIND refused: AE %r may not query", caller)
        services.record(event, "worklist.query", "failure", error="not authorized")
        yield _failure(status.NOT_AUTHORIZED, f"AE '{caller}' may not query this node")
        return
    try:
        identifier = event.identifier
        parsed = _parse(event, identifier, services, offered)
    except IdentifierError as exc:
        services.record(event, "worklist.query", "failure", error=str(exc))
        yield _failure(status.IDENTIFIER_DOES_NOT_MATCH, str(exc))
        return
    except Exception as exc:  # pydicom could not decode the identifier or one of its values
        log.warning("worklist C-FIND from %s: undecodable identifier", caller, exc_info=True)
        services.record(event, "worklist.query", "failure", error="undecodable identifier")
        yield _failure(status.CANNOT_UNDERSTAND, f"identifier cannot be decoded: {exc}")
        return
    yield from _answer(event, services, identifier, parsed)


def _parse(
    event: Event, identifier: Dataset, services: Services, offered: tuple[Status, ...]
) -> ParsedQuery:
    caller = calling_ae(event)
    negotiated = _negotiated(event)
    fuzzy = services.policy.fuzzy_find(caller) or negotiated[_FUZZY_NAMES]
    return parse_identifier(identifier, offered, fuzzy, combined=negotiated[_COMBINED_DATETIME])


def _answer(
    event: Event, services: Services, identifier: Dataset, parsed: ParsedQuery
) -> Iterator[tuple[int | Dataset, Dataset | None]]:
    try:
        items = services.index.reading_blocking(
            lambda conn: worklist.find_items(conn, parsed.query)
        )
    except Exception as exc:
        log.exception("worklist C-FIND from %s failed", calling_ae(event))
        services.record(event, "worklist.query", "failure", error="query failed")
        yield _failure(status.UNABLE_TO_PROCESS, f"worklist query failed: {exc}")
        return
    services.record(
        event, "worklist.query", patient_id=parsed.query.values.get("patient_id", ("",))[0],
        object=parsed.query.values.get("accession", ("",))[0], matches=len(items),
        keys=describe(parsed.query),
    )  # fmt: skip
    pending = PENDING_UNSUPPORTED_KEYS if parsed.unsupported else status.PENDING
    ascii_only = services.policy.ascii_worklist(calling_ae(event))
    for item in items:
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        yield pending, worklist_response(identifier, item, ascii_only)


def _negotiated(event: Event) -> tuple[bool, bool, bool]:
    """(relational, combined date-time, fuzzy names) as accepted for this association."""
    info = event.assoc.acceptor.sop_class_extended.get(MWL_FIND, b"")
    flags = [len(info) > n and info[n] == 1 for n in range(3)]
    return flags[0], flags[1], flags[2]


def handle_sop_extended(event: Event) -> dict[str, bytes]:
    """Answer SOP Class Extended Negotiation for the worklist: byte 1 is 1 (reserved), bytes
    2 (combined date-time matching) and 3 (fuzzy person-name matching) echo the request, byte 4
    (timezone adjustment) is 0. Other SOP classes get no answer (not supported)."""
    requested = event.app_info.get(MWL_FIND)
    if requested is None:
        return {}
    answer = bytearray(b"\x01\x00\x00")
    for byte in (_COMBINED_DATETIME, _FUZZY_NAMES):
        answer[byte] = 1 if len(requested) > byte and requested[byte] == 1 else 0
    if len(requested) > 3:
        answer.append(0)
    return {MWL_FIND: bytes(answer)}


def _failure(code: int, comment: str) -> tuple[Dataset, None]:
    response = Dataset()
    response.Status = code
    response.ErrorComment = comment[:64]
    return response, None
