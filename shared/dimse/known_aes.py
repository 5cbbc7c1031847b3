"""Checked entries of the known-AE table, for ``mekong ae add`` and ``PUT /api/admin/aes``."""

from __future__ import annotations

from mekong.shared.config import is_valid_ae_title
from mekong.shared.db.index import RemoteAE
from mekong.shared.dimse.policy import SERVICES

ALL = ",".join(SERVICES)


def remote_ae(
    title: str,
    host: str,
    port: int,
    allow: str | list[str] = ALL,
    fuzzy_find: bool = False,
    description: str = "",
    ascii_worklist: bool = False,
) -> RemoteAE:
    """A known AE from user input; ``ValueError`` names the first bad value."""
    if not is_valid_ae_title(title):
        raise ValueError(f"AE title must be 1-16 printable ASCII characters: {title!r}")
    names = allow.split(",") if isinstance(allow, str) else allow
    services = frozenset(s.strip().lower() for s in names if s.strip())
    unknown = services - set(SERVICES)
    if unknown:
        raise ValueError(f"allow: unknown service(s) {', '.join(sorted(unknown))}")
    host = host.strip()
    if not host or len(host) > 255 or any(c.isspace() for c in host):
        raise ValueError(f"host must be a host name or an IP address: {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be 1..65535, got {port!r}")
    return RemoteAE(
        title, host, port, services, bool(fuzzy_find), description[:256], bool(ascii_worklist)
    )
