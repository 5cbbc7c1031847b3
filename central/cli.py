"""``mekong site``: the hub's site registry from the command line (issue 6).

    mekong site add NAME --data HUB_DATA_DIR [--expires-hours H]   (token on the last line)
    mekong site token NAME --data HUB_DATA_DIR                     (a new one-time token)
    mekong site revoke NAME --data HUB_DATA_DIR
    mekong site list --data HUB_DATA_DIR

A running hub sees the change at the next request: it reads the registry on every request.
Exit status 1 when the site is unknown or the name is taken, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from mekong.central import ca_folder, registry
from mekong.central.ca import HubCA
from mekong.shared.cli_support import with_index
from mekong.shared.config import HubConfig

DEFAULT_HOURS = HubConfig().token_hours


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    site = commands.add_parser("site", help="hub: sites (edges) and their enrollment")
    actions = site.add_subparsers(required=True, metavar="ACTION")
    add = actions.add_parser("add", help="register a site; prints its enrollment token")
    add.add_argument("name")
    add.set_defaults(run=_add)
    token = actions.add_parser("token", help="a new one-time enrollment token for a site")
    token.add_argument("name")
    token.set_defaults(run=_token)
    revoke = actions.add_parser("revoke", help="refuse a site's certificate from now on")
    revoke.add_argument("name")
    revoke.set_defaults(run=_revoke)
    listing = actions.add_parser("list", help="list sites with their last report")
    listing.set_defaults(run=_list)
    for sub in (add, token):
        sub.add_argument("--expires-hours", type=float, default=DEFAULT_HOURS,
                         help=f"token validity (default {DEFAULT_HOURS:g} h)")  # fmt: skip
    for sub in (add, token, revoke, listing):
        sub.add_argument("--data", type=Path, default=Path("data"), help="hub data directory")


def _run(data: Path, work) -> object:  # type: ignore[no-untyped-def]
    return asyncio.run(with_index(data, lambda index: index.transaction(work)))


def _add(args: argparse.Namespace) -> int:
    fingerprint = HubCA(ca_folder(args.data)).fingerprint

    def work(conn):  # type: ignore[no-untyped-def]
        registry.add_site(conn, args.name)
        return registry.new_token(conn, args.name, fingerprint, args.expires_hours)

    return _print_token(args, work)


def _token(args: argparse.Namespace) -> int:
    fingerprint = HubCA(ca_folder(args.data)).fingerprint
    return _print_token(
        args, lambda conn: registry.new_token(conn, args.name, fingerprint, args.expires_hours)
    )


def _print_token(args: argparse.Namespace, work) -> int:  # type: ignore[no-untyped-def]
    try:
        token = _run(args.data, work)
    except registry.RegistryError as exc:
        print(f"mekong: {exc}", file=sys.stderr)
        return 1
    print(
        f"site {args.name}: enrollment token, shown once, single use, valid "
        f"{args.expires_hours:g} h; on the edge: mekong serve --hub-url URL --enroll-token"
    )
    print(token)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        changed = _run(args.data, lambda conn: registry.revoke(conn, args.name))
    except registry.RegistryError as exc:
        print(f"mekong: {exc}", file=sys.stderr)
        return 1
    print(f"site {args.name} revoked" if changed else f"site {args.name} was already revoked")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = asyncio.run(with_index(args.data, lambda index: index.reading(registry.sites)))
    for row in rows:  # type: ignore[attr-defined]
        print(
            f"{row['name']:20} {row['state']:8} queue={row['queue_depth']} "
            f"lag={row['lag_seconds']} version={row['version']} "
            f"studies={row['studies']}"
        )
    return 0
