"""Server-side sessions (SEC-5): a fresh random id at every login, revocable, idle timeout.

The cookie holds a random value; the database holds its SHA-256, the user and a CSRF token.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from mekong.shared.db.schema_auth import session

COOKIE = "mekong_session"
_TOUCH_EVERY = 15.0  # seconds between last-seen writes of one session


@dataclass(frozen=True)
class Session:
    key: str  # SHA-256 of the cookie value
    user_id: int
    csrf: str
    last_seen: float


def _key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


async def open_session(engine: AsyncEngine, user_id: int, remote: str) -> tuple[str, str]:
    """A new session: returns (cookie value, CSRF token)."""
    cookie, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(24), time.time()
    async with engine.begin() as conn:
        await conn.execute(
            insert(session).values(id=_key(cookie), user_fk=user_id, csrf=csrf, created_at=now,
                                   last_seen=now, remote=remote[:64])
        )  # fmt: skip
    return cookie, csrf


async def find_session(
    engine: AsyncEngine, cookie: str, idle_seconds: float, touch: bool = True
) -> Session | None:
    """The live session of a cookie; an idle one is deleted (automatic logout, QOS-1.4).

    ``touch=False`` (a page polling in the background) does not count as activity."""
    key, now = _key(cookie), time.time()
    async with engine.connect() as conn:
        row = (await conn.execute(select(session).where(session.c.id == key))).first()
    if row is None:
        return None
    if now - row.last_seen > idle_seconds:
        await close_session(engine, cookie)
        return None
    if touch and now - row.last_seen > _TOUCH_EVERY:
        async with engine.begin() as conn:
            await conn.execute(update(session).where(session.c.id == key).values(last_seen=now))
    return Session(key, row.user_fk, row.csrf, row.last_seen)


async def close_session(engine: AsyncEngine, cookie: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(session).where(session.c.id == _key(cookie)))


async def close_user_sessions(engine: AsyncEngine, user_id: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(session).where(session.c.user_fk == user_id))
