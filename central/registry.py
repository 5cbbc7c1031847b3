"""The site registry (issue 6): SQL on a synchronous connection, run through
:meth:`Index.transaction` / :meth:`Index.reading` by the hub's routes, CLI and console.

An enrollment token is ``<secret>.<CA fingerprint prefix>``: only the SHA-256 of the secret is
kept, with an expiry; it is used once. The fingerprint part lets the edge check the CA it gets.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from mekong.shared.db.schema_hub import hub_enrollment as e
from mekong.shared.db.schema_hub import hub_site as s
from mekong.shared.db.schema_hub import hub_site_study as st

SITE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
FINGERPRINT_CHARS = 32  # 128 bits of the CA's SHA-256 in the token
REPORT_KEYS = ("version", "queue_depth", "oldest_unsent_age_seconds", "disk_free_bytes",
               "disk_total_bytes", "last_error", "counts", "sent_total")  # fmt: skip


class RegistryError(ValueError):
    """A site operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class SitePrincipal:
    id: int
    name: str
    revoked: bool


def check_name(name: str) -> str:
    if not SITE_NAME.match(name):
        raise RegistryError(f"site name must be 1-64 of A-Z a-z 0-9 _ . -, got {name!r}")
    return name


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str]:
    """(secret, CA fingerprint prefix) of an enrollment token."""
    secret, _, fingerprint = token.strip().partition(".")
    return secret, fingerprint


def add_site(conn: Connection, name: str) -> int:
    check_name(name)
    if conn.execute(select(s.c.id).where(s.c.name == name)).first():
        raise RegistryError(f"a site named {name!r} already exists")
    return int(conn.execute(insert(s).values(name=name, created_at=time.time())).lastrowid)  # type: ignore[arg-type]


def new_token(conn: Connection, name: str, ca_fingerprint: str, hours: float) -> str:
    """A fresh one-time enrollment token for site ``name`` (earlier unused ones stay valid until
    they expire or the site is revoked)."""
    row = conn.execute(select(s.c.id, s.c.revoked_at).where(s.c.name == name)).first()
    if row is None:
        raise RegistryError(f"no site named {name!r}")
    if row.revoked_at is not None:
        raise RegistryError(f"site {name!r} is revoked")
    secret = secrets.token_urlsafe(32)
    now = time.time()
    conn.execute(insert(e).values(site_fk=row.id, token_hash=token_hash(secret), created_at=now,
                                  expires_at=now + hours * 3600))  # fmt: skip
    return f"{secret}.{ca_fingerprint[:FINGERPRINT_CHARS]}"


def redeem(conn: Connection, token: str, serial: str, not_after: float) -> tuple[int, str] | None:
    """Use ``token`` once: the site gets the certificate ``serial`` (replacing an earlier one).
    (site id, name), or None for an unknown, used or expired token or a revoked site."""
    secret, _ = split_token(token)
    now = time.time()
    row = conn.execute(
        select(e.c.id, s.c.id.label("site"), s.c.name)
        .join(s, s.c.id == e.c.site_fk)
        .where(e.c.token_hash == token_hash(secret), e.c.used_at.is_(None),
               e.c.expires_at > now, s.c.revoked_at.is_(None))
    ).first()  # fmt: skip
    if row is None:
        return None
    used = conn.execute(
        update(e).where(e.c.id == row.id, e.c.used_at.is_(None)).values(used_at=now)
    )
    if not used.rowcount:
        return None
    conn.execute(update(s).where(s.c.id == row.site).values(
        cert_serial=serial, cert_not_after=not_after, enrolled_at=now))  # fmt: skip
    return int(row.site), str(row.name)


def revoke(conn: Connection, name: str) -> bool:
    """Refuse the site's certificate from now on and void its unused tokens."""
    row = conn.execute(select(s.c.id, s.c.revoked_at).where(s.c.name == name)).first()
    if row is None:
        raise RegistryError(f"no site named {name!r}")
    if row.revoked_at is not None:
        return False
    now = time.time()
    conn.execute(update(s).where(s.c.id == row.id).values(revoked_at=now))
    conn.execute(update(e).where(e.c.site_fk == row.id, e.c.used_at.is_(None))
                 .values(expires_at=now))  # fmt: skip
    return True


def by_serial(conn: Connection, serial: str) -> SitePrincipal | None:
    """The site whose current certificate has ``serial``."""
    if not serial:
        return None
    row = conn.execute(
        select(s.c.id, s.c.name, s.c.revoked_at).where(s.c.cert_serial == serial)
    ).first()
    return SitePrincipal(row.id, row.name, row.revoked_at is not None) if row else None


def touch(conn: Connection, site_id: int, address: str) -> None:
    conn.execute(update(s).where(s.c.id == site_id).values(
        last_seen_at=time.time(), last_address=address[:64]))  # fmt: skip


def save_report(conn: Connection, site_id: int, report: dict[str, Any]) -> dict[str, Any]:
    """Keep the known keys of a health report (numbers and short text only)."""
    kept = {key: _clean(report[key]) for key in REPORT_KEYS if key in report}
    now = time.time()
    conn.execute(update(s).where(s.c.id == site_id).values(
        report=json.dumps(kept), report_at=now, last_seen_at=now))  # fmt: skip
    return kept


def _clean(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value
    if isinstance(value, dict):
        return {str(k)[:32]: _clean(v) for k, v in list(value.items())[:16]}
    return str(value)[:500]


def record_studies(conn: Connection, site_id: int, studies: dict[str, int]) -> None:
    """Count instances a site sent per study (the console's per-site study list)."""
    now = time.time()
    for study_uid, count in studies.items():
        where = (st.c.site_fk == site_id) & (st.c.study_uid == study_uid)
        changed = conn.execute(
            update(st).where(where).values(instances=st.c.instances + count, last_at=now)
        ).rowcount
        if not changed:
            conn.execute(insert(st).values(site_fk=site_id, study_uid=study_uid,
                                           instances=count, first_at=now, last_at=now))  # fmt: skip


def sites(conn: Connection) -> list[dict[str, Any]]:
    """Every site with its state, last report and study count, by name."""
    counts = select(st.c.site_fk, func.count().label("studies")).group_by(st.c.site_fk).subquery()
    rows = conn.execute(
        select(s, func.coalesce(counts.c.studies, 0).label("studies"))
        .outerjoin(counts, counts.c.site_fk == s.c.id)
        .order_by(s.c.name)
    ).mappings()
    return [_site(dict(row)) for row in rows]


def site(conn: Connection, name: str) -> dict[str, Any] | None:
    return next((one for one in sites(conn) if one["name"] == name), None)


def _site(row: dict[str, Any]) -> dict[str, Any]:
    report = json.loads(row.pop("report") or "{}")
    row["state"] = (
        "revoked" if row["revoked_at"] else "enrolled" if row["enrolled_at"] else "waiting"
    )
    row["report"] = report
    row["queue_depth"] = report.get("queue_depth")
    row["lag_seconds"] = report.get("oldest_unsent_age_seconds")
    row["version"] = report.get("version")
    row["disk_free_bytes"] = report.get("disk_free_bytes")
    row["disk_total_bytes"] = report.get("disk_total_bytes")
    row["last_error"] = report.get("last_error", "")
    return row


def site_studies(conn: Connection, name: str, limit: int = 200) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(st.c.study_uid, st.c.instances, st.c.first_at, st.c.last_at)
        .join(s, s.c.id == st.c.site_fk)
        .where(s.c.name == name)
        .order_by(st.c.last_at.desc())
        .limit(limit)
    ).mappings()
    return [dict(row) for row in rows]
