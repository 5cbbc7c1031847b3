"""Hub settings for an edge box: from ``mekong-enroll.toml`` on a USB stick at boot, or from the
console (PACS-7 automatic set-up; the enrollment itself, issue 6, runs in the edge node).

    mekong firstboot --config PATH --factory PATH [--enroll-file PATH]
    mekong enroll --hub-url URL --token TOKEN [--config PATH]

``mekong-enroll.toml`` (the hub's ``mekong site add NAME`` prints the token)::

    hub_url = "https://hub.benhvien.vn:8080"
    token = "..."

The configuration is written whole or not at all: the new text is checked by loading it as the
node would before it replaces the old file.
"""

from __future__ import annotations

import argparse
import grp
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mekong.shared.appliance import tomlwrite
from mekong.shared.config import ConfigError, load_config
from mekong.shared.storage.files import fsync_dir, replace_file

CONFIG = Path("/etc/mekong/mekong.toml")
ENROLL_KEYS = {"hub_url", "token"}


@dataclass(frozen=True)
class HubSettings:
    url: str
    token: str


def add_parsers(commands: Any) -> None:
    first = commands.add_parser("firstboot", help="edge box boot: configuration, USB enrollment")
    first.add_argument("--config", type=Path, default=CONFIG)
    first.add_argument("--factory", type=Path, required=True, help="default configuration")
    first.add_argument("--enroll-file", type=Path, help="mekong-enroll.toml from a USB stick")
    first.add_argument("--group", default="mekong", help="group that may read the configuration")
    first.set_defaults(run=_firstboot)
    console = commands.add_parser("enroll", help="edge: set the hub and its enrollment token")
    console.add_argument("--hub-url", required=True)
    console.add_argument("--token", required=True)
    console.add_argument("--config", type=Path, default=CONFIG)
    console.set_defaults(run=_enroll)


def _firstboot(args: argparse.Namespace) -> int:
    settings = read_enroll_file(args.enroll_file) if args.enroll_file else None
    try:
        gid = grp.getgrnam(args.group).gr_gid
    except KeyError:
        raise ConfigError(f"no group {args.group!r}: the node's user is not installed") from None
    if seed(args.config, args.factory, gid):
        print(f"wrote the default configuration {args.config}")
    if settings is not None:
        apply(args.config, settings)
        print(f"hub {settings.url} set in {args.config}; the edge enrolls when it starts")
    return 0


def _enroll(args: argparse.Namespace) -> int:
    settings = checked(args.hub_url, args.token, "the command line")
    apply(args.config, settings)
    print(f"hub {settings.url} set in {args.config}; now: systemctl restart mekong-edge")
    return 0


def read_enroll_file(path: Path) -> HubSettings:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML file: {exc}") from None
    unknown = set(raw) - ENROLL_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    url, token = raw.get("hub_url"), raw.get("token")
    if not isinstance(url, str) or not isinstance(token, str):
        raise ConfigError(f"{path}: hub_url and token must both be given as strings")
    return checked(url, token, str(path))


def checked(url: str, token: str, origin: str) -> HubSettings:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{origin}: hub_url {url!r} is not an http(s):// URL")
    if not token.strip() or any(c.isspace() for c in token.strip()):
        raise ConfigError(f"{origin}: the token is empty or has spaces in it")
    return HubSettings(url.strip().rstrip("/"), token.strip())


def seed(config: Path, factory: Path, gid: int) -> bool:
    """Copy the factory configuration when there is none yet (a blank data partition)."""
    if config.exists():
        return False
    candidate = config.with_name(f".{config.name}.new")
    replace_file(candidate, factory.read_bytes(), 0o640)
    os.chown(candidate, 0, gid)  # root's file, readable by the node through its group
    os.replace(candidate, config)
    fsync_dir(config.parent)
    return True


def apply(config: Path, settings: HubSettings) -> None:
    try:
        raw = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{config}: cannot read the configuration: {exc}") from None
    if raw.get("mode", "edge") != "edge":
        raise ConfigError(f"{config}: only an edge enrolls with a hub (mode is {raw['mode']!r})")
    raw.setdefault("hub", {}).update(url=settings.url, enroll_token=settings.token)
    _replace_checked(config, tomlwrite.dumps(raw))


def _replace_checked(config: Path, text: str) -> None:
    candidate = config.with_name(f".{config.name}.new")
    stat = config.stat()
    replace_file(candidate, ("# changed by mekong enroll / firstboot\n" + text).encode(), 0o640)
    try:
        os.chown(candidate, stat.st_uid, stat.st_gid)
        load_config(candidate)
    except BaseException:
        candidate.unlink(missing_ok=True)
        raise
    os.replace(candidate, config)
    fsync_dir(config.parent)
