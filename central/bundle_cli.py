"""Hub commands: ``mekong bundle issue FILE --data HUB`` signs a configuration bundle (its
version on the last line), ``mekong bundle key --data HUB`` prints the public key edges check
bundles with (``uplink.bundle_key`` in the edge's configuration)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from mekong.central.bundles import CURRENT, BundleStore, hub_catalogue
from mekong.shared.bundles import BundleError
from mekong.shared.cli_support import with_index


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bundle = commands.add_parser("bundle", help="configuration bundles for the edges (hub)")
    actions = bundle.add_subparsers(dest="bundle_action", required=True)
    issue = actions.add_parser("issue", help="sign FILE ({'settings': {...}}) as the next version")
    issue.add_argument("file", type=Path)
    issue.add_argument("--data", type=Path, required=True, help="the hub's data directory")
    issue.add_argument("--by", default="cli", help="who issues it (recorded in the bundle)")
    issue.set_defaults(run=_issue)
    key = actions.add_parser("key", help="print the public key edges check bundles with")
    key.add_argument("--data", type=Path, required=True)
    key.set_defaults(run=lambda args: _print(BundleStore(args.data).public_key_text()))


def _issue(args: argparse.Namespace) -> int:
    try:
        document = json.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    settings = document.get("settings") if isinstance(document, dict) else None
    if not isinstance(settings, dict):
        print('the file must hold {"settings": {...}}', file=sys.stderr)
        return 2
    if settings.get("catalogue") == CURRENT:
        settings = {**settings, "catalogue": asyncio.run(with_index(
            args.data, lambda index: index.reading(hub_catalogue)))}  # fmt: skip
    try:
        version, _ = BundleStore(args.data).issue(settings, args.by)
    except BundleError as error:
        print(f"bundle refused: {error}", file=sys.stderr)
        return 1
    print(version)
    return 0


def _print(text: str) -> int:
    print(text)
    return 0
