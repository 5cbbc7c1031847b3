"""GET /api/health: mode, version, component states, disk, index counts, server facts.

Requirements: RIS-2.1 (operating status), RIS-2.6 (date/time, RAM, server information).
:func:`snapshot` is also what the console's system status page shows.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mekong.shared.auth.roles import public
from mekong.shared.http import keys

if TYPE_CHECKING:
    from mekong.shared.node import Node

routes = web.RouteTableDef()


@routes.get("/api/health")
@public
async def health(request: web.Request) -> web.Response:
    return web.json_response(await snapshot(keys.node(request)))


async def snapshot(node: Node) -> dict[str, Any]:
    """The node's state now: components, disk, index counts, server facts."""
    assert node.index is not None
    disk = shutil.disk_usage(node.config.data_dir)
    states = node.component_states()
    extra = {name: await section() for name, section in node.health_sections.items()}
    return {
        "status": "ok" if all(s == "running" for s in states.values()) else "degraded",
        "mode": node.config.mode,
        "version": node.version,
        "ae_title": node.config.dicom.ae_title,
        "components": states,
        "disk": {"free_bytes": disk.free, "total_bytes": disk.total},
        "index": await node.index.counts(),
        "schema": await node.index.schema_revision(),
        "server": _server_facts(node.started_at),
        **extra,
    }


def _server_facts(started_at: float) -> dict[str, object]:
    memory = _meminfo()
    return {
        "hostname": platform.node(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "uptime_seconds": round(time.time() - started_at, 1),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "memory_total_bytes": memory.get("MemTotal"),
        "memory_available_bytes": memory.get("MemAvailable"),
        "python": platform.python_version(),
    }


def _meminfo() -> dict[str, int]:
    try:
        with open("/proc/meminfo") as handle:
            pairs = (line.split()[:2] for line in handle)
            return {key.rstrip(":"): int(value) * 1024 for key, value in pairs}
    except OSError:
        return {}
