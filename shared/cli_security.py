"""``mekong user``, ``mekong token`` and ``mekong audit``: accounts, API tokens, audit trail.

``mekong user add NAME --role ROLE`` prints a one-time password that must be changed at first
sign-in (there is no default password); ``mekong token create NAME --role ROLE`` prints an API
token once (only its hash is kept); ``mekong audit verify`` checks the hash chain (exit 1 when
broken). Requirements: SEC-1..6, GEN-3, PACS-16.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from mekong.shared.audit import trail
from mekong.shared.auth import accounts, tokens
from mekong.shared.auth.roles import ASSIGNABLE_ROLES
from mekong.shared.cli_support import with_index
from mekong.shared.config import ConfigError, NodeConfig
from mekong.shared.tls import self_signed

ROLES = [r.value for r in ASSIGNABLE_ROLES]


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    user = commands.add_parser("user", help="user accounts").add_subparsers(
        required=True, metavar="ACTION"
    )
    add = user.add_parser("add", help="create a user; prints a one-time password")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--display-name", default="")
    add.set_defaults(run=_user_add)
    reset = user.add_parser("reset-password", help="new one-time password for a user")
    reset.add_argument("name")
    reset.set_defaults(run=_user_reset)
    listing = user.add_parser("list", help="list users")
    listing.set_defaults(run=_user_list)

    token = commands.add_parser("token", help="API tokens for integrations").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = token.add_parser("create", help="create a token; prints it once")
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=ROLES)
    create.set_defaults(run=_token_create)
    revoke = token.add_parser("revoke", help="revoke a token")
    revoke.add_argument("name")
    revoke.set_defaults(run=_token_revoke)

    audit = commands.add_parser("audit", help="the audit trail").add_subparsers(
        required=True, metavar="ACTION"
    )
    verify = audit.add_parser("verify", help="check the hash chain of the audit trail")
    verify.set_defaults(run=_audit_verify)
    tls = commands.add_parser("tls", help="TLS certificates").add_subparsers(
        required=True, metavar="ACTION"
    )
    selfsigned = tls.add_parser("self-signed", help="write a self-signed pair for a first start")
    selfsigned.add_argument(
        "--host",
        action="append",
        default=None,
        help="name or address of this node (repeatable; default localhost)",
    )
    selfsigned.set_defaults(run=_tls_self_signed)
    for sub in (add, reset, listing, create, revoke, verify, selfsigned):
        sub.add_argument("--data", type=Path, default=Path("data"), help="data directory")


def _engine_call(args: argparse.Namespace, work):  # type: ignore[no-untyped-def]
    try:
        return asyncio.run(with_index(args.data, lambda index: work(index.engine)))
    except (accounts.AccountError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def _user_add(args: argparse.Namespace) -> int:
    password = _engine_call(
        args, lambda engine: accounts.create_user(engine, args.name, args.role, args.display_name)
    )
    print(f"user {args.name} ({args.role}) created; it must change this password at first sign-in:")
    print(password)
    return 0


def _user_reset(args: argparse.Namespace) -> int:
    password = _engine_call(args, lambda engine: accounts.reset_password(engine, args.name))
    print(f"one-time password for {args.name}:")
    print(password)
    return 0


def _user_list(args: argparse.Namespace) -> int:
    for account in _engine_call(args, accounts.list_accounts):
        state = "disabled" if account.disabled else "active"
        print(f"{account.username:24} {account.role:12} {state}")
    return 0


def _token_create(args: argparse.Namespace) -> int:
    token = _engine_call(args, lambda engine: tokens.create_token(engine, args.name, args.role))
    print(f"API token {args.name} ({args.role}); send it as 'Authorization: Bearer <token>':")
    print(token)
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    if not _engine_call(args, lambda engine: tokens.revoke_token(engine, args.name)):
        print(f"mekong: no active token {args.name!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.name}")
    return 0


def _tls_self_signed(args: argparse.Namespace) -> int:
    hosts = args.host or ["localhost", "127.0.0.1"]
    cert, key = self_signed(args.data / "tls", hosts)
    print(f"wrote {cert} and {key} (valid for {', '.join(hosts)}); add to the config file:")
    print(f'[tls]\ncert = "{cert.resolve()}"\nkey = "{key.resolve()}"')
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    db_path = NodeConfig(data_dir=args.data).index_path
    if not db_path.exists():
        raise ConfigError(f"no index in {args.data}")
    result = trail.verify(db_path)
    print(f"audit trail {'intact' if result.ok else 'BROKEN'}: {result.message}"
          f" ({result.unsealed} not yet sealed)")  # fmt: skip
    return 0 if result.ok else 1
