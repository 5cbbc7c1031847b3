"""The hub's orders feed for one site (issue 6 item 3, RIS-6.1 at the edges): every order with
a step on a device of that site (``ris_device.site``), as a snapshot, when the order, one of
its steps or its patient changed after a point in time.

Changes are handed out only once they are ``SETTLE_SECONDS`` old: a transaction stamps its
rows before it commits, so a newer stamp may become visible before an older one; by the time
a stamp is a few seconds old every transaction that took an earlier one has committed (RIS
transactions run one at a time and are short), and a cursor on the stamp misses nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from mekong.shared.db.ris_schema import ris_device, ris_order, ris_patient, ris_procedure, ris_sps
from mekong.shared.ris.orders import order_json

SETTLE_SECONDS = 2.0


def site_changes(
    conn: Connection, site: str, after: float, before: float, limit: int
) -> tuple[list[dict[str, Any]], float]:
    """(snapshots with their ``changed`` stamp, oldest first; the cursor to ask from next)."""
    stations = select(ris_device.c.ae_title).where(ris_device.c.site == site)
    query = (
        select(ris_order, ris_patient.c.updated_at.label("patient_changed"),
               func.max(ris_sps.c.updated_at).label("steps_changed"))
        .join(ris_patient, ris_patient.c.id == ris_order.c.patient_fk)
        .join(ris_procedure, ris_procedure.c.order_fk == ris_order.c.id)
        .join(ris_sps, ris_sps.c.procedure_fk == ris_procedure.c.id)
        .where(ris_sps.c.station_ae.in_(stations))
        .group_by(ris_order.c.id)
    )  # fmt: skip
    changed = []
    for row in conn.execute(query):
        stamp = max(row.updated_at, row.patient_changed, row.steps_changed or 0.0)
        if after < stamp <= before:
            changed.append((stamp, row))
    changed.sort(key=lambda item: item[0])
    page = changed[:limit]
    cursor = page[-1][0] if len(changed) > limit else before
    return [{**order_json(conn, row), "changed": stamp} for stamp, row in page], cursor


def of_site(conn: Connection, accession: str, site: str) -> bool:
    """Whether the order has a step on one of the site's devices."""
    stations = select(ris_device.c.ae_title).where(ris_device.c.site == site)
    query = (
        select(ris_order.c.id)
        .join(ris_procedure, ris_procedure.c.order_fk == ris_order.c.id)
        .join(ris_sps, ris_sps.c.procedure_fk == ris_procedure.c.id)
        .where(ris_order.c.accession == accession, ris_sps.c.station_ae.in_(stations))
        .limit(1)
    )
    return conn.execute(query).first() is not None
