"""Edge (satellite clinic) mode: video capture, non-DICOM import, QR labels, the uplink and the
link to the hub (enrollment, mutual TLS, health reports, configuration bundles) plug in here.
``register(node)`` adds the components and their HTTP routes; ``add_commands`` adds
``mekong import`` and ``mekong capture`` to the command line."""

from __future__ import annotations

import argparse
from typing import Any

ROUTE_MODULES_NAMES = (
    "mekong.edge.capture.routes",
    "mekong.edge.imports.routes",
    "mekong.edge.downlink.routes",
    "mekong.edge.labels.routes",
    "mekong.edge.reclaim.routes",
)


def route_modules() -> list[Any]:
    """The edge's route modules (the role matrix test walks them too)."""
    import importlib

    return [importlib.import_module(name) for name in ROUTE_MODULES_NAMES]


def register(node: Any) -> None:
    """Add the capture and import components and their routes to ``node`` (before it starts),
    the label routes, the key devices to the reconciler, and the uplink (to an enrolled hub, or
    to ``[uplink] url``)."""
    if node.config.hub.enabled:
        _register_hub(node)
    elif node.config.uplink.enabled:
        from mekong.edge.uplink.register import register_uplink

        register_uplink(node)
    if node.config.uplink.enabled and node.config.uplink.bundle_key:
        from mekong.edge.downlink.channel import TokenChannel

        _register_bundles(node, TokenChannel(node.config.uplink))
    from mekong.edge import openapi_edge
    from mekong.edge.capture.manager import CaptureManager
    from mekong.edge.capture.routes import MANAGER_KEY
    from mekong.edge.imports.routes import IMPORTER_KEY, WATCH_KEY
    from mekong.edge.imports.service import Importer
    from mekong.edge.imports.watch import WatchFolders
    from mekong.shared.http import openapi

    config = node.config
    capture = CaptureManager(config.data_dir, config.edge.capture_devices, node.index,
                             node.archive)  # fmt: skip
    importer = Importer(node.index, node.blobs, node.archive, node.audit,
                        config.edge.capture_devices, config.data_dir / "imports")  # fmt: skip
    app = node.http.app
    openapi.DETAILS.update(openapi_edge.DETAILS)  # before the first /api/openapi.json
    app[MANAGER_KEY], app[IMPORTER_KEY] = capture, importer
    for module in route_modules():
        app.add_routes(module.routes)
    if node.reconciler is not None:
        node.reconciler.set_key_devices(config.edge.key_devices)
    watcher = WatchFolders(config.edge.watch_folders, importer)
    app[WATCH_KEY] = watcher
    node.add_component(capture)
    from mekong.shared import discovery

    if discovery.enabled(config):
        from mekong.edge.discovery import Advertiser

        advertiser = Advertiser(node)
        node.add_component(advertiser)
        node.health_sections["discovery"] = advertiser.health
    node.add_component(watcher)
    node.health_sections["capture"] = capture.health
    node.health_sections["imports"] = watcher.health


def _register_hub(node: Any) -> None:
    """Enrolled at a hub (issue 6): the link (enrollment, mutual TLS), the uplink through it
    and the health reports."""
    from mekong.edge.hub.link import HubLink
    from mekong.edge.hub.report import HealthReporter
    from mekong.edge.uplink.register import register_uplink

    link = HubLink(node.config.data_dir, node.config.hub)
    node.add_component(link)
    sender = register_uplink(node, link)
    node.add_component(HealthReporter(node, link, sender))
    node.health_sections["hub"] = link.health
    from mekong.edge.downlink.channel import LinkChannel

    channel = LinkChannel(link, node.config.data_dir)
    _register_bundles(node, channel)
    from mekong.edge.downlink.orders import OrdersPuller

    orders = OrdersPuller(node, channel, node.config.uplink.orders_interval)
    node.add_component(orders)
    node.health_sections["orders_downlink"] = orders.health
    from mekong.edge.hub.status_up import StatusUpstream
    from mekong.shared.ris import upstream

    upstream.enable(True)  # this process's status changes; DICOM processes enable their own
    status_up = StatusUpstream(node, link, node.config.uplink.poll_interval)
    node.add_component(status_up)
    node.health_sections["status_upstream"] = status_up.health
    from mekong.edge.hub.audit_up import AuditUpstream

    audit_up = AuditUpstream(node, link, node.config.hub.report_interval)
    node.add_component(audit_up)
    node.health_sections["audit_upstream"] = audit_up.health
    from mekong.edge.hub.originals_up import OriginalsUpstream

    originals_up = OriginalsUpstream(node, link, node.config.uplink.poll_interval * 5)
    node.add_component(originals_up)
    node.health_sections["originals_upstream"] = originals_up.health
    if node.config.reclaim.enabled:
        _register_reclaim(node, link)


def _register_reclaim(node: Any, link: Any) -> None:
    """Free studies the hub confirmed; fetch them back when read (issue 6 item 4)."""
    from mekong.edge.reclaim.fetch import FetchBack
    from mekong.edge.reclaim.reclaimer import Reclaimer
    from mekong.edge.reclaim.routes import FETCH_KEY, RECLAIMER_KEY, viewer_fetch_back
    from mekong.shared.dicomweb.state import STATE_KEY

    reclaimer, fetch = Reclaimer(node), FetchBack(node, link)
    node.add_component(reclaimer)
    app = node.http.app
    app[RECLAIMER_KEY], app[FETCH_KEY] = reclaimer, fetch
    app[STATE_KEY].fetch_back = viewer_fetch_back(fetch)
    node.health_sections["reclaim"] = reclaimer.health


def _register_bundles(node: Any, channel: Any) -> None:
    """Configuration bundles from the hub (issue 6 item 3), through ``channel``."""
    from mekong.edge.downlink.bundles import BundlePuller
    from mekong.edge.downlink.routes import PULLER_KEY

    puller = BundlePuller(node, channel, node.config.uplink.bundle_interval)
    node.add_component(puller)
    node.http.app[PULLER_KEY] = puller
    node.health_sections["config_bundles"] = puller.health


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from mekong.edge import cli

    cli.add_commands(commands)
