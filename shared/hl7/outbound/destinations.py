"""``[[hl7.destinations]]`` of the configuration → the rows the outbox fans messages out to
(RIS-6.2, FEAT-1.2: the integration is configured per HIS)."""

from __future__ import annotations

import socket

from mekong.shared.config import NodeConfig
from mekong.shared.hl7.outbound.outbox import Destination


def viewer_base(config: NodeConfig) -> str:
    """``hl7.viewer_url``, else this node's own HTTP address (the host name when it listens
    on every interface)."""
    if config.hl7.viewer_url:
        return config.hl7.viewer_url
    host = config.bind
    if host in ("0.0.0.0", "::"):
        host = socket.getfqdn()
    elif ":" in host:
        host = f"[{host}]"
    scheme = "https" if config.tls.enabled else "http"
    return f"{scheme}://{host}:{config.http.port}"


def destinations(config: NodeConfig) -> list[Destination]:
    base = viewer_base(config)
    return [
        Destination(
            name=d.name,
            host=d.host,
            port=d.port,
            message_type=d.message_type,
            enabled=d.enabled,
            receiving_application=d.receiving_application,
            receiving_facility=d.receiving_facility,
            sending_facility=config.dicom.ae_title,
            viewer_url=d.viewer_url or base,
        )  # fmt: skip
        for d in config.hl7.destinations
    ]
