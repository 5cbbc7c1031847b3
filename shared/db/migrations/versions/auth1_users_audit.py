"""Users, password history, sessions, API tokens, append-only audit trail.

Revision ID: auth1
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "auth1"
down_revision = "0001"
branch_labels = None
depends_on = None


def _now(name: str) -> sa.Column:
    return sa.Column(name, sa.Float, nullable=False)


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("display_name", sa.Text, nullable=False, server_default=""),
        sa.Column("password_hash", sa.Text, nullable=False),
        _now("password_changed_at"),
        sa.Column("must_change", sa.Boolean, nullable=False, server_default="1"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("totp_secret", sa.String(64), nullable=False, server_default=""),
        _now("created_at"),
    )
    op.create_table(
        "password_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_fk", sa.Integer, sa.ForeignKey("app_user.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        _now("created_at"),
    )  # fmt: skip
    op.create_index("ix_password_history_user", "password_history", ["user_fk"])
    op.create_table(
        "app_session",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_fk", sa.Integer, sa.ForeignKey("app_user.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        _now("created_at"),
        _now("last_seen"),
        sa.Column("remote", sa.String(64), nullable=False, server_default=""),
    )  # fmt: skip
    op.create_index("ix_session_user", "app_session", ["user_fk"])
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        _now("created_at"),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("last_used_at", sa.Float, nullable=True),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer, primary_key=True),
        _now("at"),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(128), nullable=False, server_default=""),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object", sa.Text, nullable=False, server_default=""),
        sa.Column("patient_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("prev_hash", sa.String(64), nullable=False, server_default=""),
        sa.Column("hash", sa.String(64), nullable=False, server_default=""),
    )
    for column in ("at", "actor", "action"):
        op.create_index(f"ix_audit_{column}", "audit_event", [column])
    if op.get_bind().dialect.name == "sqlite":
        # append-only: sealed events cannot change, no event can be deleted (verify still
        # detects edits made after dropping these triggers)
        op.execute(
            "CREATE TRIGGER audit_sealed_is_final BEFORE UPDATE ON audit_event "
            "WHEN OLD.hash != '' BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_event "
            "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
        )


def downgrade() -> None:
    for table in ("audit_event", "api_token", "app_session", "password_history", "app_user"):
        op.drop_table(table)
