"""Signing in against the hospital directory with an LDAP bind (PACS-4.6), through ldap3.

Two ways to find the user's entry, as directories differ:

- ``user_dn_template`` — bind straight as ``uid={username},ou=people,…``, then read the entry;
- ``user_base`` + ``user_filter`` — search with a service account (``bind_dn`` and a password
  read from a file or an environment variable at each sign-in, never logged) or anonymously,
  then bind as the entry found.

The role comes from the first configured group (``group_roles``, group DN → role) the user is
in: the entry's ``memberOf`` and, with ``group_base``, groups whose ``member`` names the user.
The Mekong user name is the entry's ``username_attribute`` (e.g. ``uid``, ``sAMAccountName``)
and must follow SEC-1 (letters, digits, underscore); other names are refused, not rewritten.

ldap3 is blocking: :func:`authenticate` runs it in a thread with short timeouts so an outage
answers "unavailable" within ``timeout_seconds`` (or twice that for a search-then-bind).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from ldap3 import BASE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPBindError,
    LDAPException,
    LDAPInvalidCredentialsResult,
    LDAPNoSuchObjectResult,
    LDAPSizeLimitExceededResult,
)
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from mekong.shared.auth.accounts import USERNAME
from mekong.shared.config import LdapConfig

log = logging.getLogger(__name__)
OK, WRONG_PASSWORD, NOT_FOUND, NOT_ALLOWED, UNAVAILABLE = (
    "ok", "wrong_password", "not_found", "not_allowed", "unavailable",
)  # fmt: skip


@dataclass(frozen=True)
class DirectoryResult:
    outcome: str  # ok | wrong_password | not_found | not_allowed | unavailable
    reason: str = ""  # for the audit trail and the error shown; never the password
    username: str = ""  # the directory's spelling of the user name (SEC-1 checked)
    display_name: str = ""
    role: str = ""
    dn: str = ""


class DirectoryDown(Exception):
    """The directory cannot be reached or answered with an error."""


async def authenticate(config: LdapConfig, username: str, password: str) -> DirectoryResult:
    """Check ``username``/``password`` against the directory (PACS-4.6); never raises."""
    if not USERNAME.match(username):
        return DirectoryResult(NOT_ALLOWED, "user names may use only letters, digits and "
                                            "underscore (SEC-1)")  # fmt: skip
    if not password:  # an empty password is an anonymous bind to LDAP: never a sign-in
        return DirectoryResult(WRONG_PASSWORD, "empty password")
    try:
        return await asyncio.to_thread(_authenticate, config, username, password)
    except DirectoryDown as exc:
        return DirectoryResult(UNAVAILABLE, f"the hospital directory cannot be reached ({exc})")
    except Exception as exc:  # a directory problem must never break sign-in for others
        log.exception("LDAP sign-in of %s failed", username)
        return DirectoryResult(UNAVAILABLE, f"the directory answer failed: {type(exc).__name__}")


def _authenticate(config: LdapConfig, username: str, password: str) -> DirectoryResult:
    server = _server(config)
    if config.user_dn_template:
        dn = config.user_dn_template.format(username=escape_rdn(username))
        user = _bind(config, server, dn, password)
        if user is None:
            return DirectoryResult(WRONG_PASSWORD, "the directory refused the password")
        try:
            entry = _read(config, user, dn, BASE, "(objectClass=*)")
            return _result(config, user, entry, username)
        finally:
            user.unbind()
    service = _service(config, server)
    try:
        search_filter = config.user_filter.format(username=escape_filter_chars(username))
        entry = _read(config, service, config.user_base, SUBTREE, search_filter)
        if entry is None:
            return DirectoryResult(NOT_FOUND, "not in the directory")
        user = _bind(config, server, entry.entry_dn, password)
        if user is None:
            return DirectoryResult(WRONG_PASSWORD, "the directory refused the password")
        user.unbind()
        return _result(config, service, entry, username)
    finally:
        service.unbind()


def _server(config: LdapConfig) -> Server:
    tls = None
    if config.url.startswith("ldaps://") or config.start_tls:
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_file or None,
                  version=ssl.PROTOCOL_TLS_CLIENT)  # fmt: skip
    return Server(config.url, use_ssl=config.url.startswith("ldaps://"), tls=tls,
                  connect_timeout=config.timeout_seconds, get_info=None)  # fmt: skip


def _connection(config: LdapConfig, server: Server, dn: str | None, password: str | None):  # type: ignore[no-untyped-def]
    """An open, bound connection; raises LDAPBindError for refused credentials."""
    conn = Connection(
        server,
        user=dn,
        password=password,
        raise_exceptions=True,
        read_only=True,
        receive_timeout=math.ceil(config.timeout_seconds),
    )  # receive_timeout: ldap3 packs it into SO_RCVTIMEO, so it must be an int
    try:
        conn.open()
        if config.start_tls:
            conn.start_tls()
        conn.bind()
        return conn
    except (LDAPBindError, LDAPInvalidCredentialsResult):
        conn.unbind()
        raise
    except LDAPException as exc:
        conn.unbind()
        raise DirectoryDown(f"{type(exc).__name__}: {exc}") from None


def _bind(config: LdapConfig, server: Server, dn: str, password: str):  # type: ignore[no-untyped-def]
    """The user's own bound connection, or None when the directory refuses the password."""
    try:
        return _connection(config, server, dn, password)
    except (LDAPBindError, LDAPInvalidCredentialsResult):
        return None


def _service(config: LdapConfig, server: Server):  # type: ignore[no-untyped-def]
    """The service account's connection (anonymous when no ``bind_dn``) for searching."""
    if not config.bind_dn:
        return _bind_or_down(config, server, None, None)
    return _bind_or_down(config, server, config.bind_dn, service_password(config))


def _bind_or_down(config: LdapConfig, server: Server, dn: str | None, password: str | None):  # type: ignore[no-untyped-def]
    try:
        return _connection(config, server, dn, password)
    except (LDAPBindError, LDAPInvalidCredentialsResult):
        raise DirectoryDown("the directory refused the service account (ldap.bind_dn)") from None


def service_password(config: LdapConfig) -> str:
    """The service account's password, read now from its file or environment variable."""
    if config.bind_password_file:
        return Path(config.bind_password_file).read_text(encoding="utf-8").strip()
    if config.bind_password_env:
        return os.environ.get(config.bind_password_env, "")
    return ""


def _read(config: LdapConfig, conn, base: str, scope: str, search_filter: str):  # type: ignore[no-untyped-def]
    """The one entry matching, or None (none, or more than one: ambiguous)."""
    attributes = [config.username_attribute, config.display_name_attribute, "memberOf"]
    try:
        conn.search(base, search_filter, search_scope=scope, attributes=attributes,
                    size_limit=2, time_limit=max(1, int(config.timeout_seconds)))  # fmt: skip
    except (LDAPNoSuchObjectResult, LDAPSizeLimitExceededResult):
        return None
    except LDAPException as exc:
        raise DirectoryDown(f"{type(exc).__name__}: {exc}") from None
    return conn.entries[0] if len(conn.entries) == 1 else None


def _result(config: LdapConfig, conn, entry, typed: str) -> DirectoryResult:  # type: ignore[no-untyped-def]
    if entry is None:
        return DirectoryResult(NOT_FOUND, "not in the directory")
    name = _first(entry, config.username_attribute) or typed
    if name.lower() != typed.lower():
        return DirectoryResult(NOT_ALLOWED, f"the directory names this user {name!r}")
    if not USERNAME.match(name):
        return DirectoryResult(NOT_ALLOWED, f"the directory user name {name!r} does not follow "
                                            "SEC-1 (letters, digits, underscore)")  # fmt: skip
    role = _role(config, conn, entry)
    if not role:
        return DirectoryResult(NOT_ALLOWED, "in none of the directory groups Mekong maps to a "
                                            "role (ldap.group_roles)")  # fmt: skip
    display = _first(entry, config.display_name_attribute)
    return DirectoryResult(OK, username=name, display_name=display, role=role, dn=entry.entry_dn)


def _role(config: LdapConfig, conn, entry) -> str:  # type: ignore[no-untyped-def]
    groups = {g.lower() for g in _values(entry, "memberOf")}
    if config.group_base:
        search_filter = config.group_filter.format(user_dn=escape_filter_chars(entry.entry_dn))
        try:
            conn.search(config.group_base, search_filter, search_scope=SUBTREE, attributes=[],
                        time_limit=max(1, int(config.timeout_seconds)))  # fmt: skip
        except LDAPNoSuchObjectResult:  # no group base, or this account may not read it
            return _mapped(config, groups)
        except LDAPException as exc:
            raise DirectoryDown(f"{type(exc).__name__}: {exc}") from None
        groups |= {e.entry_dn.lower() for e in conn.entries}
    return _mapped(config, groups)


def _mapped(config: LdapConfig, groups: set[str]) -> str:
    """The role of the first configured group the user is in, else ``default_role``."""
    member_of = {_normal_dn(g) for g in groups}
    for group, role in config.group_roles:
        if _normal_dn(group) in member_of:
            return role
    return config.default_role


def _normal_dn(dn: str) -> str:
    return ",".join(part.strip() for part in dn.lower().split(","))


def _values(entry, attribute: str) -> list[str]:  # type: ignore[no-untyped-def]
    if attribute not in entry.entry_attributes:
        return []
    return [str(v) for v in entry[attribute].values]


def _first(entry, attribute: str) -> str:  # type: ignore[no-untyped-def]
    values = _values(entry, attribute)
    return values[0] if values else ""
