"""Users, sessions, API tokens and the audit trail (migration ``auth1``)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from mekong.shared.db.schema import metadata

user = Table(
    "app_user",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("display_name", Text, nullable=False, server_default=""),
    Column("password_hash", Text, nullable=False),
    Column("password_changed_at", Float, nullable=False),
    Column("must_change", Boolean, nullable=False, server_default="1"),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("expires_at", Float, nullable=True),  # account expiry (QOS-1.3)
    Column("totp_secret", String(64), nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    # signs in through the hospital directory (LDAP, PACS-4.6); no local password (ldap1)
    Column("directory", Boolean, nullable=False, server_default="0"),
)

password_history = Table(
    "password_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_fk", Integer, ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_password_history_user", password_history.c.user_fk)

session = Table(
    "app_session",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the cookie value
    Column("user_fk", Integer, ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("remote", String(64), nullable=False, server_default=""),
)
Index("ix_session_user", session.c.user_fk)

api_token = Table(
    "api_token",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256, never the token
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("last_used_at", Float, nullable=True),
)

audit_event = Table(
    "audit_event",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("actor", String(128), nullable=False),  # user name, token name, AE title, "system"
    Column("actor_kind", String(16), nullable=False),  # user | token | ae | hl7 | system
    Column("source", String(128), nullable=False, server_default=""),  # peer address
    Column("action", String(64), nullable=False),
    Column("object", Text, nullable=False, server_default=""),  # e.g. a study UID, a user
    Column("patient_id", String(64), nullable=False, server_default=""),
    Column("outcome", String(16), nullable=False),  # success | failure
    Column("detail", Text, nullable=False, server_default=""),
    Column("prev_hash", String(64), nullable=False, server_default=""),
    Column("hash", String(64), nullable=False, server_default=""),  # '' until sealed
)
Index("ix_audit_at", audit_event.c.at)
Index("ix_audit_actor", audit_event.c.actor)
Index("ix_audit_action", audit_event.c.action)
