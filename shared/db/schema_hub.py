"""The hub's site registry (issue 6; migration ``hub1``): enrolled edges, their one-time
enrollment tokens, their latest health report and the studies each one sent.

A site's ``cert_serial`` is the serial (hex) of the one client certificate the hub accepts from
it; ``revoked_at`` set means every request with that certificate is refused.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text

from mekong.shared.db.schema import metadata

hub_site = Table(
    "hub_site",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("enrolled_at", Float, nullable=True),
    Column("cert_serial", String(64), nullable=False, server_default=""),
    Column("cert_not_after", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Column("last_seen_at", Float, nullable=True),
    Column("last_address", String(64), nullable=False, server_default=""),
    Column("report_at", Float, nullable=True),
    Column("report", Text, nullable=False, server_default="{}"),  # JSON of the last report
)
Index("ix_hub_site_serial", hub_site.c.cert_serial)

hub_enrollment = Table(
    "hub_enrollment",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site_fk", Integer, ForeignKey("hub_site.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the secret
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
)

hub_site_study = Table(
    "hub_site_study",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site_fk", Integer, ForeignKey("hub_site.id", ondelete="CASCADE"), nullable=False),
    Column("study_uid", String(64), nullable=False),
    Column("instances", Integer, nullable=False, server_default="0"),
    Column("first_at", Float, nullable=False),
    Column("last_at", Float, nullable=False),
)
Index("ix_hub_site_study", hub_site_study.c.site_fk, hub_site_study.c.study_uid, unique=True)
