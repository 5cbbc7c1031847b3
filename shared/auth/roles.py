"""Roles and what each may do. Permissions are per action, never per page (SEC-6).

Every HTTP handler declares one permission (``@requires``) or is marked ``@public``; the
access middleware refuses a handler that declares neither, so a new route cannot be left open
by omission (tests/test_roles.py walks the route table).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Role(StrEnum):
    ADMIN = "admin"
    RADIOLOGIST = "radiologist"
    TECHNICIAN = "technician"
    RECEPTIONIST = "receptionist"
    REFERRING = "referring"  # referring physician: read only
    AUDITOR = "auditor"
    SITE = "site"  # an enrolled edge, known by its client certificate only (never a user/token)


class Permission(StrEnum):
    IMAGES_READ = "images.read"  # QIDO, WADO, viewer data
    IMAGES_WRITE = "images.write"  # STOW-RS
    ORDERS_READ = "orders.read"
    ORDERS_WRITE = "orders.write"
    SYSTEM_READ = "system.read"  # status details, logs, message logs
    SYSTEM_CONFIGURE = "system.configure"  # log level, AEs, devices, configuration
    USERS_MANAGE = "users.manage"
    AUDIT_READ = "audit.read"
    CONFIG_PULL = "config.pull"  # an edge fetching the hub's configuration bundles
    ORDERS_PULL = "orders.pull"  # an edge fetching its site's orders from the hub
    BLOBS_FETCH = "blobs.fetch"  # an edge fetching back a study it freed (from the hub)
    ORDERS_REPORT = "orders.report"  # an edge reporting its orders' status to the hub
    AUDIT_PUSH = "audit.push"  # an edge sending its audit trail to the hub
    SELF = "self"  # any signed-in user: own profile, own password, logout
    SITE_REPORT = "site.report"  # an enrolled edge reports its health to the hub


_READ_IMAGES = {Permission.IMAGES_READ, Permission.ORDERS_READ}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission)
    - {Permission.AUDIT_READ, Permission.SITE_REPORT, Permission.AUDIT_PUSH},
    Role.RADIOLOGIST: frozenset(_READ_IMAGES | {Permission.IMAGES_WRITE}),
    Role.TECHNICIAN: frozenset(_READ_IMAGES | {Permission.IMAGES_WRITE, Permission.ORDERS_WRITE}),
    Role.RECEPTIONIST: frozenset({Permission.ORDERS_READ, Permission.ORDERS_WRITE}),
    Role.REFERRING: frozenset(_READ_IMAGES),
    Role.AUDITOR: frozenset({Permission.AUDIT_READ, Permission.SYSTEM_READ}),
}
for _role, _granted in ROLE_PERMISSIONS.items():
    ROLE_PERMISSIONS[_role] = _granted | {Permission.SELF}
# An edge enrolled at a hub (mutual TLS): store its instances, report its health; nothing else,
# in particular no reading (issue 6: an edge cannot read the hub's archive).
ROLE_PERMISSIONS[Role.SITE] = frozenset(
    {
        Permission.IMAGES_WRITE,
        Permission.SITE_REPORT,
        Permission.CONFIG_PULL,
        Permission.BLOBS_FETCH,
        Permission.ORDERS_REPORT,
        Permission.AUDIT_PUSH,
        Permission.ORDERS_PULL,
    }
)
# roles a user account or an API token may have: "site" comes only from a hub certificate
ASSIGNABLE_ROLES = tuple(role for role in Role if role != Role.SITE)

PUBLIC = "public"


def allowed(role: str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


def requires(permission: Permission) -> Callable[[F], F]:
    """Declare the permission a handler needs."""

    def mark(handler: F) -> F:
        handler.permission = permission  # type: ignore[attr-defined]
        return handler

    return mark


def public(handler: F) -> F:
    """Declare a handler open to everyone (health probe, login, static assets)."""
    handler.permission = PUBLIC  # type: ignore[attr-defined]
    return handler


def permission_of(handler: Callable[..., Any]) -> str | None:
    return getattr(handler, "permission", None)


def parse_role(text: str) -> Role:
    """A role for a user account or an API token (``site`` is not one: see ASSIGNABLE_ROLES)."""
    if text in {role.value for role in ASSIGNABLE_ROLES}:
        return Role(text)
    names = ", ".join(r.value for r in ASSIGNABLE_ROLES)
    raise ValueError(f"unknown role '{text}': choose one of {names}")
