"""User accounts: creation with a one-time password, login checks, password changes (SEC-1..5).

A new account (or a reset) gets a random one-time password and ``must_change``: nothing works
with it but changing it. Passwords expire after ``expiry_days``; accounts can carry an expiry
date and be disabled (QOS-1.3). Consecutive failures are counted for the challenge (SEC-3).

Directory accounts (``directory``, PACS-4.6) are made and updated by a successful LDAP bind:
they have no local password, so the password rules (change, expiry, reuse) do not apply to
them; TOTP for admins, disable/expiry and the failure challenge do.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from mekong.shared.auth.passwords import check_policy, hash_password, reused, verify_password
from mekong.shared.auth.roles import parse_role
from mekong.shared.config import AuthConfig
from mekong.shared.db.schema_auth import password_history, user

USERNAME = re.compile(r"^[A-Za-z0-9_]{2,64}$")
CHALLENGE_AFTER = 5  # consecutive failures before a challenge is required


class AccountError(ValueError):
    """A request about an account cannot be done; the message says why."""


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: str
    display_name: str
    must_change: bool
    failures: int
    disabled: bool
    expires_at: float | None
    password_changed_at: float
    totp_secret: str
    directory: bool = False  # signs in through LDAP (PACS-4.6); no local password

    def password_expired(self, expiry_days: int) -> bool:
        return bool(expiry_days) and time.time() > self.password_changed_at + expiry_days * 86400

    def pending_step(self, auth: AuthConfig) -> str:
        """What the user must do before anything else: change the password, enrol a TOTP."""
        local = not self.directory  # the directory owns a directory user's password
        if local and (self.must_change or self.password_expired(auth.password_expiry_days)):
            return "change_password"
        if auth.admin_totp and self.role == "admin" and not self.totp_secret:
            return "enrol_totp"
        return ""

    @property
    def account_expired(self) -> bool:
        return self.expires_at is not None and time.time() > self.expires_at


def one_time_password() -> str:
    """Random, and always passes the policy (it must be changed at first login anyway)."""
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{core[:4]}-{core[4:8]}-{core[8:]}A9a"


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise AccountError(
            f"user name '{username}' may use only letters, digits and underscore (2–64)"
        )
    return username


async def create_user(engine: AsyncEngine, username: str, role: str, display_name: str = "") -> str:
    """Create an account; returns its one-time password."""
    check_username(username)
    parse_role(role)
    password = one_time_password()
    now = time.time()
    async with engine.begin() as conn:
        if await _find(conn, username):
            raise AccountError(f"user '{username}' already exists")
        await conn.execute(
            insert(user).values(
                username=username, role=role, display_name=display_name,
                password_hash=hash_password(password), password_changed_at=now,
                must_change=True, created_at=now,
            )
        )  # fmt: skip
    return password


async def reset_password(engine: AsyncEngine, username: str) -> str:
    password = one_time_password()
    async with engine.begin() as conn:
        account = await _require(conn, username)
        _refuse_directory(account)
        await conn.execute(
            update(user).where(user.c.id == account.id).values(
                password_hash=hash_password(password), must_change=True, failures=0,
                password_changed_at=time.time(),
            )
        )  # fmt: skip
    return password


async def get_account(engine: AsyncEngine, username: str) -> Account | None:
    async with engine.connect() as conn:
        return await _find(conn, username)


async def account_by_id(engine: AsyncEngine, user_id: int) -> Account | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(user).where(user.c.id == user_id))).first()
    return _account(row) if row else None


async def list_accounts(engine: AsyncEngine) -> list[Account]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(user).order_by(user.c.username))).all()
    return [_account(row) for row in rows]


async def check_password(engine: AsyncEngine, username: str, password: str) -> Account | None:
    """The account when the password is right (failures reset), else None (failures + 1)."""
    async with engine.begin() as conn:
        account = await _find(conn, username)
        if account is None:
            verify_password(_DUMMY_HASH, password)  # same time as a wrong password
            return None
        ok = verify_password(_password_hash(await conn.execute(
            select(user.c.password_hash).where(user.c.id == account.id)
        )), password)  # fmt: skip
        failures = 0 if ok else account.failures + 1
        await conn.execute(update(user).where(user.c.id == account.id).values(failures=failures))
    return account if ok else None


async def change_password(engine: AsyncEngine, username: str, new_password: str) -> None:
    async with engine.begin() as conn:
        account = await _require(conn, username)
        _refuse_directory(account)
        check_policy(new_password, username)
        current = _password_hash(
            await conn.execute(select(user.c.password_hash).where(user.c.id == account.id))
        )
        previous = [current] + [
            row.password_hash
            for row in await conn.execute(
                select(password_history.c.password_hash)
                .where(password_history.c.user_fk == account.id)
                .order_by(password_history.c.id.desc())
            )
        ]
        if reused(new_password, previous):
            raise AccountError("this password was used before; choose a new one")
        now = time.time()
        await conn.execute(
            insert(password_history).values(user_fk=account.id, password_hash=current,
                                             created_at=now)
        )  # fmt: skip
        await conn.execute(
            update(user).where(user.c.id == account.id).values(
                password_hash=hash_password(new_password), password_changed_at=now,
                must_change=False, failures=0,
            )
        )  # fmt: skip


async def directory_account(
    engine: AsyncEngine, username: str, role: str, display_name: str
) -> Account:
    """Make or update the local row of a user the directory just authenticated (PACS-4.6):
    marked ``directory``, no usable local password, role and name from the directory, failures
    reset. A local (non-directory) account of the same name is never taken over."""
    check_username(username)
    parse_role(role)
    async with engine.begin() as conn:
        account = await _find(conn, username)
        if account is not None and not account.directory:
            raise AccountError(f"'{username}' is a local account, not a directory one")
        values = dict(role=role, display_name=display_name, failures=0, must_change=False)
        if account is None:
            now = time.time()
            await conn.execute(insert(user).values(
                username=username, password_hash="", password_changed_at=now, created_at=now,
                directory=True, **values,
            ))  # fmt: skip
        else:
            await conn.execute(update(user).where(user.c.id == account.id).values(**values))
        found = await _find(conn, username)
    assert found is not None
    return found


async def count_failure(engine: AsyncEngine, username: str) -> None:
    """One more consecutive failure for an existing account (the directory refused it)."""
    async with engine.begin() as conn:
        await conn.execute(
            update(user).where(user.c.username == username).values(failures=user.c.failures + 1)
        )


def _refuse_directory(account: Account) -> None:
    if account.directory:
        raise AccountError(
            f"the password of '{account.username}' is kept by the hospital directory (LDAP); "
            "change it there"
        )


async def set_account(engine: AsyncEngine, username: str, **values: object) -> None:
    """Change role, display name, disabled, expires_at or totp_secret."""
    allowed = {"role", "display_name", "disabled", "expires_at", "totp_secret"}
    unknown = set(values) - allowed
    if unknown:
        raise AccountError(f"cannot change {', '.join(sorted(unknown))}")
    if "role" in values:
        parse_role(str(values["role"]))
    async with engine.begin() as conn:
        account = await _require(conn, username)
        await conn.execute(update(user).where(user.c.id == account.id).values(**values))


async def _find(conn, username: str) -> Account | None:  # type: ignore[no-untyped-def]
    row = (await conn.execute(select(user).where(user.c.username == username))).first()
    return _account(row) if row else None


async def _require(conn, username: str) -> Account:  # type: ignore[no-untyped-def]
    account = await _find(conn, username)
    if account is None:
        raise AccountError(f"no user '{username}'")
    return account


def _password_hash(result) -> str:  # type: ignore[no-untyped-def]
    return str(result.scalar_one())


def _account(row) -> Account:  # type: ignore[no-untyped-def]
    return Account(
        row.id, row.username, row.role, row.display_name, bool(row.must_change), row.failures,
        bool(row.disabled), row.expires_at, row.password_changed_at, row.totp_secret,
        bool(row.directory),
    )  # fmt: skip


_DUMMY_HASH = hash_password("not-a-real-password-Aa1!")
