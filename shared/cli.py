"""The ``mekong`` command: run a node and administer its data directory.

``mekong serve`` runs an edge or hub node (RIS-2.1); ``mekong ae`` manages the table of known
DICOM AEs and what each may do (PACS-3, SEC), effective on a running node within a second;
``mekong ris`` the RIS master files (RIS-9.6).
Exit status 2 and one line on stderr for a bad configuration or argument.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path

from mekong.shared import __version__, cli_security
from mekong.shared.appliance import cli as appliance_cli
from mekong.shared.appliance import enroll as enroll_cli
from mekong.shared.appliance import install as install_cli
from mekong.shared.cli_support import with_index
from mekong.shared.config import ConfigError, load_config
from mekong.shared.dimse.known_aes import remote_ae
from mekong.shared.dimse.policy import SERVICES
from mekong.shared.hl7.outbound import cli as outbox_cli
from mekong.shared.recon import cli as recon_cli
from mekong.shared.ris import cli as ris_cli


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"mekong: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mekong", description="Mekong RIS-PACS node")
    parser.add_argument("--version", action="version", version=f"mekong {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run a node")
    serve.add_argument("--mode", choices=["edge", "hub"])
    serve.add_argument("--data", type=Path, help="data directory (default ./data)")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument("--bind", help="listen address (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int)
    serve.add_argument("--dicom-port", type=int)
    serve.add_argument("--hl7-port", type=int)
    serve.add_argument("--mtls-port", type=int, help="hub: the edges' mutual-TLS port")
    serve.add_argument("--ae-title")
    serve.add_argument("--log-level")
    serve.add_argument(
        "--anonymous-role",
        help="role of requests without credentials from "
        "--anonymous-network (trusted LAN modalities); default none",
    )
    serve.add_argument(
        "--anonymous-network",
        action="append",
        metavar="CIDR",
        help="a trusted network (repeatable)",
    )
    serve.add_argument("--hub-url", help="edge: the hub's base HTTP(S) URL (enrolls once)")
    serve.add_argument("--enroll-token", help="edge: the token of 'mekong site add' at the hub")
    serve.set_defaults(run=_serve)

    ae = commands.add_parser("ae", help="known DICOM application entities")
    ae_commands = ae.add_subparsers(required=True, metavar="ACTION")
    add = ae_commands.add_parser("add", help="add or update an AE")
    add.add_argument("title")
    add.add_argument("--host", required=True)
    add.add_argument("--port", type=int, required=True)
    add.add_argument(
        "--allow", default=",".join(SERVICES), help=f"comma list of {','.join(SERVICES)}"
    )
    add.add_argument("--fuzzy", action="store_true", help="accent-folded C-FIND name matching")
    add.add_argument(
        "--ascii-worklist",
        action="store_true",
        help="worklist answers folded to ASCII (modalities that cannot show UTF-8)",
    )
    add.add_argument("--description", default="")
    add.set_defaults(run=_ae_add)
    listing = ae_commands.add_parser("list", help="list AEs")
    listing.set_defaults(run=_ae_list)
    remove = ae_commands.add_parser("remove", help="remove an AE")
    remove.add_argument("title")
    remove.set_defaults(run=_ae_remove)
    for sub in (add, listing, remove):
        sub.add_argument("--data", type=Path, default=Path("data"), help="data directory")
    cli_security.add_commands(commands)
    ris_cli.add_parser(commands)
    outbox_cli.add_parser(commands)
    recon_cli.add_parser(commands)
    appliance_cli.add_parser(commands)
    install_cli.add_parser(commands)
    enroll_cli.add_parsers(commands)
    _mode_commands(commands)
    return parser


def _mode_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Commands of the mode packages (``mekong import``, ``mekong capture`` from the edge),
    found by name like the node's ``register`` hook: ``shared`` never imports them."""
    for package in ("mekong.edge", "mekong.central"):
        add = getattr(importlib.import_module(package), "add_commands", None)
        if add is not None:
            add(commands)


def _serve(args: argparse.Namespace) -> int:
    from mekong.shared import logs
    from mekong.shared.node import Node

    config = load_config(
        args.config,
        {
            "mode": args.mode,
            "data_dir": args.data,
            "bind": args.bind,
            "log_level": args.log_level,
            "http.port": args.http_port,
            "hub.mtls_port": args.mtls_port,
            "dicom.port": args.dicom_port,
            "hl7.port": args.hl7_port,
            "dicom.ae_title": args.ae_title,
            "auth.anonymous_role": args.anonymous_role,
            "auth.anonymous_networks": args.anonymous_network,
            "hub.url": args.hub_url,
            "hub.enroll_token": args.enroll_token,
        },
    )
    logs.configure(config.log_level)
    try:
        asyncio.run(Node(config).run())
    except OSError as exc:  # a port in use, an unwritable data directory
        print(f"mekong: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


def _ae_add(args: argparse.Namespace) -> int:
    try:
        ae = remote_ae(
            args.title, args.host, args.port, args.allow, args.fuzzy, args.description,
            args.ascii_worklist,
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    asyncio.run(with_index(args.data, lambda index: index.save_remote_ae(ae)))
    print(f"{ae.title} {ae.host}:{ae.port} allow={','.join(sorted(ae.allow))}")
    return 0


def _ae_list(args: argparse.Namespace) -> int:
    aes = asyncio.run(with_index(args.data, lambda index: index.remote_aes()))
    for ae in aes:
        flags = (" fuzzy" if ae.fuzzy_find else "") + (
            " ascii-worklist" if ae.ascii_worklist else ""
        )
        print(f"{ae.title:16} {ae.host}:{ae.port} allow={','.join(sorted(ae.allow))}{flags}")
    return 0


def _ae_remove(args: argparse.Namespace) -> int:
    removed = asyncio.run(with_index(args.data, lambda index: index.remove_remote_ae(args.title)))
    if not removed:
        print(f"mekong: no AE named {args.title!r}", file=sys.stderr)
        return 1
    print(f"removed {args.title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
