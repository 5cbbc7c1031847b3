"""Hub (central hospital) mode (issue 6): the site registry, the hub's small CA, enrollment of
edges, the mutual-TLS listener they send through, resumable uploads of large objects, their
health reports, the sites console page and ``mekong site``. ``register(node)`` plugs them
into a hub node; ``add_commands`` adds ``mekong site`` to the command line."""

from __future__ import annotations

import argparse
from typing import Any

ROUTE_MODULES_NAMES = (
    "mekong.central.routes",
    "mekong.central.console",
    "mekong.central.bundles",
    "mekong.central.orders_feed",
    "mekong.central.blobs",
    "mekong.central.discovery",
    "mekong.central.status_in",
    "mekong.central.audit_in",
    "mekong.central.originals_in",
    "mekong.central.uploads",
)


def route_modules() -> list[Any]:
    """The hub's route modules (the role matrix test walks them too)."""
    import importlib

    return [importlib.import_module(name) for name in ROUTE_MODULES_NAMES]


def ca_folder(data_dir: Any) -> Any:
    return data_dir / "hub"


def register(node: Any) -> None:
    """Load (or make) the CA, open the mutual-TLS listener, add the site routes and pages."""
    from mekong.central import bundles, mtls, openapi_hub, uploads
    from mekong.central.ca import HubCA
    from mekong.central.partials import PartialStore, UploadJanitor
    from mekong.central.routes import HUB_KEY, HubState
    from mekong.shared.dicomweb.stow import STORED
    from mekong.shared.http import openapi
    from mekong.shared.http.access import CLIENT_CERT

    ca = HubCA(ca_folder(node.config.data_dir))
    context = mtls.mtls_context(ca, mtls.server_hosts(node))
    app = node.http.app
    app[HUB_KEY] = HubState(ca, node.config.hub)
    app[CLIENT_CERT] = mtls.certificate_resolver(node, context)
    app[STORED] = mtls.count_site_studies
    app[bundles.STORE_KEY] = bundles.BundleStore(node.config.data_dir)
    partials = PartialStore(node.config.data_dir, node.config.hub.upload_max_age_hours * 3600)
    app[uploads.STORE_KEY] = partials
    openapi.DETAILS.update(openapi_hub.DETAILS)  # before the first /api/openapi.json
    for module in route_modules():
        app.add_routes(module.routes)
    node.add_component(mtls.MtlsListener(node, context))
    node.add_component(UploadJanitor(partials))
    from mekong.shared import discovery

    if discovery.enabled(node.config):
        from mekong.central.discovery import LISTENER_KEY, Listener

        listener = Listener(node)
        app[LISTENER_KEY] = listener
        node.add_component(listener)


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from mekong.central import bundle_cli, cli

    cli.add_commands(commands)
    bundle_cli.add_commands(commands)
