"""The console menu: only the pages the user's role allows (SEC-6.2; the server checks again)."""

from __future__ import annotations

from dataclasses import dataclass

from mekong.shared.auth.roles import Permission, allowed
from mekong.shared.console.i18n import N_

ADMINISTRATION = N_("Administration")


@dataclass(frozen=True)
class Entry:
    path: str
    label: str  # message id, translated in the template
    permission: Permission
    group: str = ""  # message id of the sub-menu, "" for the top level
    mode: str = ""  # "hub": shown on a hub only; "" on every node


ENTRIES = (
    Entry("/studies", N_("Studies"), Permission.IMAGES_READ),
    Entry("/orders", N_("Waiting list"), Permission.ORDERS_READ),
    Entry("/unmatched", N_("Unmatched studies"), Permission.ORDERS_READ),
    Entry("/admin/status", N_("System status"), Permission.SYSTEM_READ, ADMINISTRATION),
    Entry("/admin/aes", N_("DICOM AEs"), Permission.SYSTEM_READ, ADMINISTRATION),
    Entry("/admin/logs", N_("Logs"), Permission.SYSTEM_READ, ADMINISTRATION),
    Entry("/admin/config", N_("Configuration"), Permission.SYSTEM_READ, ADMINISTRATION),
    Entry("/admin/hl7", N_("HL7 messages"), Permission.SYSTEM_READ, ADMINISTRATION),
    Entry("/admin/sites", N_("Sites"), Permission.SYSTEM_READ, ADMINISTRATION, mode="hub"),
    Entry("/admin/users", N_("Users"), Permission.USERS_MANAGE, ADMINISTRATION),
    Entry("/audit", N_("Audit trail"), Permission.AUDIT_READ),
)


def visible(role: str, mode: str = "edge") -> list[Entry]:
    return [
        entry for entry in ENTRIES if allowed(role, entry.permission) and entry.mode in ("", mode)
    ]


def grouped(role: str, mode: str = "edge") -> list[tuple[str, list[Entry]]]:
    """Menu items in order, consecutive entries of one group together: [(group, entries)]."""
    groups: list[tuple[str, list[Entry]]] = []
    for entry in visible(role, mode):
        if groups and groups[-1][0] == entry.group and entry.group:
            groups[-1][1].append(entry)
        else:
            groups.append((entry.group, [entry]))
    return groups


def first_page(role: str) -> str | None:
    entries = visible(role)
    return entries[0].path if entries else None
