"""API tokens for integrations (the HIS, scripts): ``Authorization: Bearer mk_…``.

Only the SHA-256 of a token is stored; the token itself is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from mekong.shared.auth.accounts import AccountError, check_username
from mekong.shared.auth.roles import parse_role
from mekong.shared.db.schema_auth import api_token

PREFIX = "mk_"


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: str
    created_at: float
    revoked_at: float | None
    last_used_at: float | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(engine: AsyncEngine, name: str, role: str) -> str:
    check_username(name)
    parse_role(role)
    token = PREFIX + secrets.token_urlsafe(32)
    async with engine.begin() as conn:
        if (await conn.execute(select(api_token.c.id).where(api_token.c.name == name))).first():
            raise AccountError(f"a token named '{name}' already exists")
        await conn.execute(
            insert(api_token).values(name=name, role=role, token_hash=digest(token),
                                     created_at=time.time())
        )  # fmt: skip
    return token


async def revoke_token(engine: AsyncEngine, name: str) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(
            update(api_token)
            .where(api_token.c.name == name, api_token.c.revoked_at.is_(None))
            .values(revoked_at=time.time())
        )
    return bool(result.rowcount)


async def token_principal(engine: AsyncEngine, token: str) -> tuple[str, str] | None:
    """(name, role) of a valid, unrevoked token."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(api_token.c.name, api_token.c.role).where(
                    api_token.c.token_hash == digest(token), api_token.c.revoked_at.is_(None)
                )
            )
        ).first()
    return (row.name, row.role) if row else None


async def list_tokens(engine: AsyncEngine) -> list[TokenInfo]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(api_token).order_by(api_token.c.name))).all()
    return [TokenInfo(r.name, r.role, r.created_at, r.revoked_at, r.last_used_at) for r in rows]
