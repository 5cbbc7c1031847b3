"""C-FIND SCP (Patient Root and Study Root): standard matching, optional per-AE fuzzy names."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pynetdicom.events import Event

from mekong.shared.db.attributes import Level
from mekong.shared.db.query import QueryError
from mekong.shared.dimse import status
from mekong.shared.dimse.identifiers import IdentifierError, query_from, response_for, returned_keys
from mekong.shared.dimse.sequences import match_and_fill, read_sequences, sequence_keys
from mekong.shared.dimse.services import Services, calling_ae

log = logging.getLogger(__name__)


def handle_find(event: Event, services: Services) -> Iterator[tuple[int, Dataset | None]]:
    caller = calling_ae(event)
    if not services.policy.allows(caller, "find"):
        log.warning("C-FIND refused: AE %r may not query", caller)
        yield _failure(status.NOT_AUTHORIZED, f"AE '{caller}' may not query this node")
        return
    identifier = event.identifier
    sequences = sequence_keys(identifier)
    try:
        query = query_from(identifier, fuzzy=services.policy.fuzzy_find(caller))
        query.with_digest = bool(sequences) and query.level != Level.PATIENT
        rows = services.run(services.index.find(query, returned_keys(identifier, query.level)))
    except (IdentifierError, QueryError) as exc:
        yield _failure(status.IDENTIFIER_DOES_NOT_MATCH, str(exc))
        return
    except Exception as exc:
        log.exception("C-FIND from %s failed", caller)
        yield _failure(status.UNABLE_TO_PROCESS, f"query failed: {exc}")
        return
    services.record(event, "images.query", object=query.filters.get("StudyInstanceUID", ""),
                    patient_id=query.filters.get("PatientID", ""), level=query.level.name,
                    matches=len(rows))  # fmt: skip
    for row in rows:
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        digest = row.pop("_digest", None)
        response = response_for(identifier, row, services.ae_title)
        if query.with_digest and not _answer_sequences(services, sequences, digest, response):
            continue
        yield status.PENDING, response


def _answer_sequences(
    services: Services, keys: list[DataElement], digest: str | None, response: Dataset
) -> bool:
    """Match and fill sequence keys from one stored instance of the row (see sequences.py)."""
    if digest is None:
        return False
    try:
        header = read_sequences(services.archive.blobs.path_for(digest), keys)
    except OSError:
        log.warning("C-FIND: blob %s unreadable for sequence keys", digest)
        return False
    return match_and_fill(keys, header, response)


def _failure(code: int, comment: str) -> tuple[int, Dataset | None]:
    response = Dataset()
    response.Status = code
    response.ErrorComment = comment[:64]
    return response, None  # type: ignore[return-value]
