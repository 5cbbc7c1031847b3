"""Hub (central hospital) mode: site registry, replication receiver and config push plug in."""

from __future__ import annotations

import argparse
from typing import Any


def route_modules() -> list[Any]:
    """The hub's route modules (the role matrix test walks them too)."""
    from mekong.central import bundles

    return [bundles]


def register(node: Any) -> None:
    """Add the hub-only components and routes to ``node`` (before it starts)."""
    from mekong.central import bundles

    bundles.register(node)


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from mekong.central import cli

    cli.add_commands(commands)
