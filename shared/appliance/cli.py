"""``mekong backup | restore | verify | upgrade`` (QOS-3, QOS-5, PACS-7.2): keeping an
appliance's data safe and its binary current. Exit status 1 with one line on stderr when the
operation failed; 0 when it did what it says."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mekong.shared.appliance import backup, restore, upgrade, verify

DEFAULT_BINARY = Path("/opt/mekong/bin/mekong")


def add_parser(commands: Any) -> None:
    _backup_parser(commands)
    _restore_parser(commands)
    check = commands.add_parser("verify", help="check every indexed blob is present and intact")
    check.add_argument("--data", type=Path, default=Path("data"), help="data directory")
    check.set_defaults(run=_verify)
    _upgrade_parser(commands)


def _backup_parser(commands: Any) -> None:
    command = commands.add_parser("backup", help="consistent online backup of a data directory")
    command.add_argument("--data", type=Path, default=Path("data"), help="data directory")
    command.add_argument("--to", type=Path, required=True, help="backup folder (disk or NAS)")
    command.add_argument("--config", type=Path, help="the node's configuration file, to keep")
    command.add_argument("--keep", type=int, default=0, help="keep the newest N snapshots")
    command.set_defaults(run=_backup)


def _restore_parser(commands: Any) -> None:
    command = commands.add_parser("restore", help="restore a backup into an empty data dir")
    command.add_argument("--from", dest="source", type=Path, required=True, help="backup folder")
    command.add_argument("--data", type=Path, required=True, help="empty data directory")
    command.add_argument("--snapshot", default="", help="snapshot name (default: the newest)")
    command.add_argument("--config-out", type=Path, help="where to write the saved config")
    command.set_defaults(run=_restore)


def _upgrade_parser(commands: Any) -> None:
    command = commands.add_parser("upgrade", help="install a new binary; roll back if unhealthy")
    command.add_argument("binary", type=Path, help="the new mekong binary")
    command.add_argument("--installed", type=Path, default=DEFAULT_BINARY)
    command.add_argument("--unit", default="mekong-edge.service", help="systemd unit to restart")
    command.add_argument("--restart-command", default="", help="instead of systemctl restart")
    command.add_argument("--health-url", default="http://127.0.0.1:8080/api/health")
    command.add_argument("--ca-file", type=Path, help="CA of an https health URL")
    command.add_argument("--timeout", type=float, default=240.0, help="seconds to become healthy")
    command.set_defaults(run=_upgrade)


def _backup(args: argparse.Namespace) -> int:
    try:
        done = backup.take_backup(args.data, args.to, args.config, args.keep)
    except (backup.BackupError, OSError) as exc:
        return _fail(f"backup failed: {exc}")
    print(
        f"backup {done.snapshot}: {done.counts['study']} studies, {done.blobs} blobs "
        f"({done.blobs_copied} new, {done.bytes_copied} bytes) "
        f"in {done.seconds:.1f} s"
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    try:
        done = restore.restore(args.source, args.data, args.snapshot, args.config_out)
    except (restore.RestoreError, OSError) as exc:
        return _fail(f"restore failed: {exc}")
    config = f"; configuration written to {done.config}" if done.config else ""
    print(f"restored {done.snapshot.name} into {args.data}: {done.blobs} blobs{config}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    report = verify.verify(args.data)
    print(verify.describe(report))
    return 0 if report.ok else 1


def _upgrade(args: argparse.Namespace) -> int:
    installed = upgrade.Installed(
        args.installed,
        upgrade.restart_command(args.unit, args.restart_command),
        args.health_url,
        args.ca_file,
    )
    try:
        done = upgrade.upgrade(installed, args.binary, args.timeout)
    except (upgrade.UpgradeError, OSError) as exc:
        return _fail(f"upgrade: {exc}")
    print(
        f"upgraded {done.old_version} → {done.new_version}; "
        f"service back in {done.downtime_seconds:.1f} s"
    )
    return 0


def _fail(message: str) -> int:
    print(f"mekong: {message}", file=sys.stderr)
    return 1
