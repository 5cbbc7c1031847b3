"""``mekong outbox``: the outbound HL7 queue from the command line (RIS-6.2), beside
``GET /api/hl7/outbox``: what waits, since when, the last error; resend a dead letter.

    mekong outbox list [--state DEAD] [--destination his] [--limit 50] --data DIR
    mekong outbox resend ID --data DIR      (a running node sends it within a second)
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mekong.shared.config import ConfigError, NodeConfig
from mekong.shared.db.index import Index
from mekong.shared.db.outbox_schema import STATES
from mekong.shared.hl7.outbound import outbox


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("outbox", help="outbound HL7 to the HIS: list, resend")
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="messages, newest first")
    listing.add_argument("--state", choices=STATES, type=str.upper)
    listing.add_argument("--destination", default="")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=_list)
    resend = actions.add_parser("resend", help="put a DEAD message back in its queue")
    resend.add_argument("id", type=int)
    resend.set_defaults(run=_resend)
    for sub in (listing, resend):
        sub.add_argument("--data", type=Path, default=Path("data"), help="data directory")


def run_on_index(data: Path, work: Callable[[Any], Any], write: bool = False) -> Any:
    async def main() -> Any:
        config = NodeConfig(data_dir=data)
        if not config.index_path.exists():
            raise ConfigError(f"no index at {config.index_path}")
        index = await Index.open(config.index_path)
        try:
            return await (index.transaction(work) if write else index.reading(work))
        finally:
            await index.close()

    return asyncio.run(main())


def _list(args: argparse.Namespace) -> int:
    rows = run_on_index(args.data, lambda conn: outbox.search(
        conn, args.state or "", args.destination, "", max(1, args.limit)))  # fmt: skip
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["created_at"]))
        print(f"#{row['id']}  {when}  {row['destination']}  {row['state']}  {row['event']}  "
              f"{row['accession']}  MSH-10 {row['control_id']}  attempts {row['attempts']}"
              + (f"  last error: {row['last_error']}" if row["last_error"] else ""))  # fmt: skip
    return 0


def _resend(args: argparse.Namespace) -> int:
    try:
        row = run_on_index(args.data, lambda conn: outbox.resend(conn, args.id), write=True)
    except outbox.OutboxError as exc:
        print(f"mekong: {exc}")
        return 1
    print(f"#{row['id']} {row['control_id']} queued again for {row['destination']}")
    return 0
