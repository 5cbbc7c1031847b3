"""One order as the hub sees it, applied to the edge's RIS (issue 6 item 3).

The hub is the order placer for its edges: a new order is created with the hub's accession,
study UID and step IDs (so images made at the edge carry what the hub expects); while both
sides still have it editable (SCHEDULED / ARRIVED) the hub's details win; a cancel or
discontinue at the hub ends it here. Once the edge's own workflow moved it on (IN PROGRESS by
MPPS, completed), the edge's status is kept: the modality's account of what it did is the
edge's to tell.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from mekong.shared.http.orders import order_request
from mekong.shared.ris import orders
from mekong.shared.ris.errors import NotFound
from mekong.shared.ris.model import OrderKey
from mekong.shared.ris.status import EDITABLE, FINAL, Status

SOURCE = "HUB"
ENDINGS = (Status.CANCELLED, Status.DISCONTINUED)
ORDER_FIELDS = ("accession", "placer_number", "filler_number", "priority", "ordering_physician",
                "reason")  # fmt: skip


def apply_snapshot(conn: Connection, snapshot: dict[str, Any], changes: list[str]) -> str:
    """Create, change or end the local copy; returns what was done (for the log)."""
    accession = str(snapshot["accession"])
    hub_status = Status(snapshot["status"])
    try:
        local = orders.find_order(conn, OrderKey(accession=accession))
    except NotFound:
        local = None
    if local is None:
        if hub_status in FINAL:
            return "ended at the hub before it reached this site: skipped"
        orders.create_order(conn, _request(snapshot), changes)
        return "created"
    local_status = Status(local.status)
    if hub_status in ENDINGS and local_status not in FINAL:
        orders.set_order_status(conn, OrderKey(accession=accession), hub_status, changes)
        return hub_status.value.lower()
    if hub_status in EDITABLE and local_status in EDITABLE:
        orders.change_order(conn, OrderKey(accession=accession), _request(snapshot), changes)
        return "changed"
    return f"kept ({local_status.value} here, {hub_status.value} at the hub)"


def _request(snapshot: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The snapshot (``order_json``) as the order API's request body."""
    order = {key: snapshot[key] for key in ORDER_FIELDS}
    steps = [{k: v for k, v in step.items() if k != "status"} for step in snapshot["steps"]]
    body = {"patient": snapshot["patient"], "order": order, "procedure": snapshot["procedure"],
            "steps": steps}  # fmt: skip
    if snapshot.get("visit"):
        body["visit"] = snapshot["visit"]
    return replace(order_request(body), source=SOURCE)
