"""Order status changes to report to the hub (issue 6 item 2), for an enrolled edge.

:func:`record` runs inside the transaction that changed the order (from
``workflow.order_status_changed``: MPPS, the console, reconciliation), so the report exists
exactly when the change committed. It is off unless this process serves an enrolled edge
(:func:`enable`, at start, in the node and in every DICOM process — MPPS may arrive in any).
Changes that came *from* the hub (its orders feed) do not pass here, so nothing echoes back.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, insert

from mekong.shared.db.schema_uplink import upstream_event
from mekong.shared.ris.status import Status

REPORTED = frozenset({Status.ARRIVED, Status.IN_PROGRESS, Status.COMPLETED, Status.DISCONTINUED})
_enabled: list[bool] = []


def enable(on: bool) -> None:
    _enabled[:] = [on]


def record(conn: Connection, accession: str, status: Status) -> None:
    if _enabled and _enabled[0] and status in REPORTED:
        conn.execute(insert(upstream_event).values(accession=accession, status=status.value,
                                                    created_at=time.time()))  # fmt: skip
