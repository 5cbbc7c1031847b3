"""``mekong ris``: the RIS master files from the command line (RIS-9.6), for what no HL7 master
file carries (devices) and for set-up before the HIS sends its catalogues.

    mekong ris add device ae_title=CT1 modality=CT room=P101 name="CT 128" --data DIR
    mekong ris add service code=SA01 "name=Siêu âm bụng" modality=US bhyt_min_minutes=6
    mekong ris list device --data DIR
    mekong ris remove device CT1 --data DIR
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mekong.shared.config import ConfigError, NodeConfig
from mekong.shared.db.index import Index
from mekong.shared.ris import catalogue
from mekong.shared.ris.errors import DomainError

KINDS = tuple(catalogue.TABLES)


def add_parser(commands: Any) -> None:
    ris = commands.add_parser("ris", help="RIS master files: services, rooms, devices, ...")
    actions = ris.add_subparsers(required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add or update an entry: KIND field=value ...")
    add.add_argument("kind", choices=KINDS)
    add.add_argument("fields", nargs="+", metavar="FIELD=VALUE")
    add.set_defaults(run=_add)
    listing = actions.add_parser("list", help="list the entries of a kind")
    listing.add_argument("kind", choices=KINDS)
    listing.set_defaults(run=_list)
    remove = actions.add_parser("remove", help="remove an entry by its key")
    remove.add_argument("kind", choices=KINDS)
    remove.add_argument("key")
    remove.set_defaults(run=_remove)
    for sub in (add, listing, remove):
        sub.add_argument("--data", type=Path, default=Path("data"), help="data directory")


def _run(data: Path, work: Callable[[Any], Any]) -> Any:
    async def main() -> Any:
        config = NodeConfig(data_dir=data)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        index = await Index.open(config.index_path)
        try:
            return await index.transaction(work)
        finally:
            await index.close()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        raise ConfigError(exc.message) from None


def _add(args: argparse.Namespace) -> int:
    values = {}
    for item in args.fields:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"expected FIELD=VALUE, got {item!r}")
        values[name.strip()] = value
    done = _run(args.data, lambda conn: catalogue.upsert_entry(conn, args.kind, values))
    print(f"{args.kind} {done}")
    return 0


def _list(args: argparse.Namespace) -> int:
    for entry in _run(args.data, lambda conn: catalogue.entries(conn, args.kind)):
        print("  ".join(f"{k}={v}" for k, v in entry.items() if k != "updated_at" and v != ""))
    return 0


def _remove(args: argparse.Namespace) -> int:
    if not _run(args.data, lambda conn: catalogue.delete_entry(conn, args.kind, args.key)):
        print(f"mekong: no {args.kind} {args.key!r}")
        return 1
    print(f"removed {args.kind} {args.key}")
    return 0
