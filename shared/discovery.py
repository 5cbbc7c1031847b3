"""DNS-SD on the LAN (issue 6 item 5): an edge advertises its DICOM service (``_dicom._tcp``,
AE title in TXT) and its console (``_http._tcp``); a hub lists the DICOM nodes it hears.

``discovery.enabled`` is ``auto`` by default: on when the node listens on the LAN (``bind`` is
not a loopback address), off on 127.0.0.1 — advertising a service nobody else can reach would
only mislead. Multicast DNS answers on the interfaces of ``bind`` (all of them for 0.0.0.0).
"""

from __future__ import annotations

import ipaddress
import socket

import ifaddr
from zeroconf import IPVersion

from mekong.shared.config import NodeConfig

DICOM = "_dicom._tcp.local."
HTTP = "_http._tcp.local."


def enabled(config: NodeConfig) -> bool:
    setting = config.discovery.enabled
    if setting == "auto":
        return not ipaddress.ip_address(config.bind).is_loopback
    return setting == "on"


def interfaces(config: NodeConfig) -> list[str]:
    """The IPv4 addresses to speak mDNS on (and to advertise)."""
    if config.bind != "0.0.0.0":
        return [config.bind]
    found = [
        ip.ip
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback
    ]
    return found or ["127.0.0.1"]


def packed(addresses: list[str]) -> list[bytes]:
    return [socket.inet_aton(address) for address in addresses]


IP_VERSION = IPVersion.V4Only
