"""Which studies may be freed: every instance confirmed at the hub by the same SHA-256 (outbox
row ``sent`` and ``verified``), not all freed already; oldest last image first."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, and_, func, insert, select

from mekong.shared.db.schema import instance, series, study
from mekong.shared.db.schema_uplink import reclaimed_blob, uplink_outbox


@dataclass(frozen=True)
class Confirmed:
    study_uid: str
    last_at: float  # the study's newest image, seconds since 1970
    size: int  # bytes of its instances still here


def confirmed_studies(conn: Connection, destination: str) -> list[Confirmed]:
    confirmed = and_(
        uplink_outbox.c.instance_fk == instance.c.id,
        uplink_outbox.c.destination == destination,
        uplink_outbox.c.state == "sent",
        uplink_outbox.c.verified.is_(True),
    )
    query = (
        select(study.c.study_uid, func.max(instance.c.received_at).label("last_at"),
               func.sum(instance.c.size).label("size"))
        .join(series, series.c.study_fk == study.c.id)
        .join(instance, instance.c.series_fk == series.c.id)
        .outerjoin(uplink_outbox, confirmed)
        .outerjoin(reclaimed_blob, reclaimed_blob.c.digest == instance.c.digest)
        .group_by(study.c.id)
        .having(func.count(instance.c.id) == func.count(uplink_outbox.c.id))
        .having(func.count(reclaimed_blob.c.digest) < func.count(instance.c.id))
        .order_by("last_at")
    )  # fmt: skip
    return [Confirmed(r.study_uid, r.last_at, int(r.size or 0)) for r in conn.execute(query)]


def mark_freed(conn: Connection, study_uid: str, destination: str) -> list[str]:
    """Record the study's blobs as freed (before the files go); returns their digests. A blob
    that another, unconfirmed instance also uses is left."""
    digests = (
        select(instance.c.digest)
        .select_from(instance.join(series).join(study))
        .where(study.c.study_uid == study_uid)
    )
    everywhere = (
        select(instance.c.digest, instance.c.size, func.count(instance.c.id).label("uses"),
               func.count(uplink_outbox.c.id).label("confirmed"))
        .outerjoin(uplink_outbox, and_(
            uplink_outbox.c.instance_fk == instance.c.id,
            uplink_outbox.c.destination == destination,
            uplink_outbox.c.state == "sent", uplink_outbox.c.verified.is_(True)))
        .where(instance.c.digest.in_(digests))
        .where(instance.c.digest.not_in(select(reclaimed_blob.c.digest)))
        .group_by(instance.c.digest, instance.c.size)
    )  # fmt: skip
    rows = [r for r in conn.execute(everywhere) if r.uses == r.confirmed]
    if rows:
        now = time.time()
        freed = [{"digest": r.digest, "size": r.size, "reclaimed_at": now} for r in rows]
        conn.execute(insert(reclaimed_blob), freed)
    return [r.digest for r in rows]
