"""The bundles an edge received, on disk: ``DATA/config-bundles/NNNNNN.json`` (the envelopes,
as received) and ``state.json`` — the version in force and, after a rollback, the newest
version not to take again (``skip_through``). Every write is durable (fsync, rename)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from mekong.shared.storage.files import replace_file


@dataclass(frozen=True)
class State:
    current: int = 0
    skip_through: int = 0

    @property
    def newest_seen(self) -> int:
        return max(self.current, self.skip_through)


class AppliedBundles:
    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "config-bundles"

    def state(self) -> State:
        path = self.folder / "state.json"
        if not path.exists():
            return State()
        return State(**json.loads(path.read_text()))

    def set_state(self, state: State) -> None:
        self._write("state.json", json.dumps(asdict(state)).encode())

    def keep(self, version: int, envelope: dict[str, str]) -> None:
        self._write(f"{version:06d}.json", json.dumps(envelope).encode())

    def envelope(self, version: int) -> dict[str, str]:
        return json.loads((self.folder / f"{version:06d}.json").read_text())

    def versions(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(int(p.stem) for p in self.folder.glob("*.json") if p.stem.isdigit())

    def _write(self, name: str, data: bytes) -> None:
        replace_file(self.folder / name, data)
