"""``mekong unmatched``: stored studies no order claimed, from the command line (RIS-3.8),
beside ``GET /api/unmatched`` (link them there or in the console).

    mekong unmatched list [--limit 50] --data DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mekong.shared.hl7.outbound.cli import run_on_index
from mekong.shared.ris import links


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("unmatched", help="stored studies not linked to an order")
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="newest first, with the reason")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--data", type=Path, default=Path("data"), help="data directory")
    listing.set_defaults(run=_list)


def _list(args: argparse.Namespace) -> int:
    rows = run_on_index(args.data, lambda conn: links.list_unmatched(conn, max(1, args.limit)))
    for row in rows:
        hint = f"  suggested {row['suggested_accession']}" if row["suggested_accession"] else ""
        print(f"{row['study_uid']}  {row['patient_id']}  {row['patient_name']}  "
              f"{row['study_date']}  {row['modalities']}  {row['num_instances']} instance(s)  "
              f"{row['reason_code']}: {row['reason']}{hint}")  # fmt: skip
    return 0
