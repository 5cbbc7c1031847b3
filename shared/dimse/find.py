"""C-FIND SCP (Patient Root and Study Root): standard matching, optional per-AE fuzzy names."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from pydicom.dataset import Dataset
from pynetdicom.events import Event

from mekong.shared.db.query import QueryError
from mekong.shared.dimse import status
from mekong.shared.dimse.identifiers import IdentifierError, query_from, response_for, returned_keys
from mekong.shared.dimse.services import Services, calling_ae

log = logging.getLogger(__name__)


def handle_find(event: Event, services: Services) -> Iterator[tuple[int, Dataset | None]]:
    caller = calling_ae(event)
    if not services.policy.allows(caller, "find"):
        log.warning("C-FIND refused: AE %r may not query", caller)
        yield _failure(status.NOT_AUTHORIZED, f"AE '{caller}' may not query this node")
        return
    identifier = event.identifier
    try:
        query = query_from(identifier, fuzzy=services.policy.fuzzy_find(caller))
        rows = services.run(services.index.find(query, returned_keys(identifier, query.level)))
    except (IdentifierError, QueryError) as exc:
        yield _failure(status.IDENTIFIER_DOES_NOT_MATCH, str(exc))
        return
    except Exception as exc:
        log.exception("C-FIND from %s failed", caller)
        yield _failure(status.UNABLE_TO_PROCESS, f"query failed: {exc}")
        return
    for row in rows:
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        yield status.PENDING, response_for(identifier, row, services.ae_title)


def _failure(code: int, comment: str) -> tuple[int, Dataset | None]:
    response = Dataset()
    response.Status = code
    response.ErrorComment = comment[:64]
    return response, None  # type: ignore[return-value]
