"""Configuration of edge ↔ hub replication (issue 6): ``[uplink]``, ``[hub]``, ``[reclaim]``,
``[discovery]`` and their checks."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mekong.shared.config_checks import ConfigError
from mekong.shared.config_checks import check_url as _check_url

if TYPE_CHECKING:
    from mekong.shared.config import NodeConfig


@dataclass(frozen=True)
class UplinkWindow:
    """A time of day with its own upload rule (QOS-3: e.g. a daytime limit), local time;
    ``start`` after ``end`` wraps past midnight. The first window that holds now applies;
    outside every window ``uplink.bandwidth`` does."""

    start: str = "00:00"  # HH:MM
    end: str = "24:00"
    bandwidth: int = 0  # bytes/s in this window; 0 = unlimited
    pause: bool = False  # send nothing in this window (the queue waits)


@dataclass(frozen=True)
class UplinkConfig:
    """Edge → hub store-and-forward (PACS-19, PACS-7.1, QOS-3); off while ``url`` is empty."""

    url: str = ""  # DICOMweb base of the destination, e.g. https://hub:8080/dicom-web
    token: str = ""  # API token at the destination, sent as 'Authorization: Bearer'
    destination: str = "hub"  # name of this destination in the outbox
    batch_size: int = 50  # instances per STOW-RS request
    batch_bytes: int = 32 * 1024 * 1024  # and at most this many bytes (one bigger goes alone)
    max_attempts: int = 5  # permanent failures (4xx, refused part) before the dead-letter list
    backoff_base: float = 1.0  # seconds; doubled per consecutive failure, with jitter
    backoff_max: float = 300.0
    bandwidth: int = 0  # bytes/s cap on uploads; 0 = unlimited
    timeout: float = 300.0  # seconds per request
    poll_interval: float = 1.0  # seconds between looks for newly stored instances
    # send uncompressed CT/MR as lossless JPEG 2000 (pixel-exact, checked; the edge keeps its
    # original, the hub the re-encoded copy): ~2.5x less WAN traffic for CT, CPU in a pool
    j2k_lossless: bool = False
    # the hub's Ed25519 public key (base64, `mekong bundle key`): configuration bundles signed
    # with it are applied; "" = bundles are not fetched
    bundle_key: str = ""
    bundle_interval: float = 60.0  # seconds between looks for a new configuration bundle
    orders_interval: float = 5.0  # seconds between looks for the site's orders (enrolled edge)
    schedule: tuple[UplinkWindow, ...] = ()  # [[uplink.schedule]] windows
    # objects of at least this many bytes go by resumable upload when the destination is a
    # Mekong hub (POST /api/hub/uploads); 0 = always STOW-RS
    resumable_bytes: int = 16 * 1024 * 1024
    chunk_bytes: int = 4 * 1024 * 1024  # bytes per PATCH of a resumable upload (<= 64 MiB)

    @property
    def enabled(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class HubConfig:
    """Edge ↔ hub trust (issue 6). On a hub: the mutual-TLS listener the enrolled edges use.
    On an edge: where the hub is and the one-time enrollment token (``mekong site add``)."""

    # hub mode
    mtls_port: int = 8443  # HTTPS listener that requires a client certificate of the hub's CA
    hosts: tuple[str, ...] = ()  # extra names/addresses in the hub's server certificate
    mtls_url: str = ""  # what edges are told to use; default https://<host they enrolled at>:port
    token_hours: float = 168.0  # an enrollment token is valid this long (default 7 days)
    client_cert_days: int = 825  # lifetime of an edge's client certificate
    # edge mode
    url: str = ""  # the hub's base HTTP(S) URL, e.g. https://hub.example.vn:8080
    enroll_token: str = ""  # used once; afterwards DATA/hub/ holds the certificate
    ca_file: str = ""  # CA bundle to verify an https:// hub URL with (default: the system's)
    report_interval: float = 60.0  # seconds between health reports to the hub
    # hub mode: a partial resumable upload without progress for this long is deleted
    upload_max_age_hours: float = 72.0

    @property
    def enabled(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class ReclaimConfig:
    """Edge storage reclamation (issue 6 item 4, PACS-8.2/8.3, PACS-12): free studies the hub
    confirmed by digest, fetch them back from the hub when asked for. Needs an enrolled hub."""

    enabled: bool = False
    after_days: float = 30.0  # free a confirmed study this long after its last image; 0 = never
    min_free_percent: float = 10.0  # below this much free disk, free the oldest confirmed too
    interval: float = 300.0  # seconds between looks


@dataclass(frozen=True)
class DiscoveryConfig:
    """DNS-SD on the LAN (issue 6 item 5): "auto" = on unless the node listens on loopback."""

    enabled: str = "auto"  # auto | on | off


def _validate_destination(uplink: UplinkConfig) -> None:
    parsed = urlsplit(uplink.url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"uplink.url must be an http(s) URL, got {uplink.url!r}")
    if not uplink.token.strip():
        raise ConfigError(
            "uplink.token is needed with uplink.url (mekong token create … --data HUB)"
        )


def validate_uplink(uplink: UplinkConfig) -> None:
    if uplink.resumable_bytes < 0:
        raise ConfigError(f"uplink.resumable_bytes must be >= 0 (0 = never), got "
                          f"{uplink.resumable_bytes}")  # fmt: skip
    if not 64 * 1024 <= uplink.chunk_bytes <= 64 * 1024 * 1024:
        raise ConfigError(f"uplink.chunk_bytes must be 64 KiB..64 MiB, got {uplink.chunk_bytes}")
    if uplink.enabled:  # the numbers below apply to an enrolled edge's uplink too
        _validate_destination(uplink)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", uplink.destination):
        raise ConfigError(f"uplink.destination must be 1-64 of A-Z a-z 0-9 _ . -, got "
                          f"{uplink.destination!r}")  # fmt: skip
    for key, value in (("batch_size", uplink.batch_size), ("batch_bytes", uplink.batch_bytes),
                       ("max_attempts", uplink.max_attempts), ("timeout", uplink.timeout),
                       ("backoff_base", uplink.backoff_base),
                       ("poll_interval", uplink.poll_interval),
                       ("bundle_interval", uplink.bundle_interval),
                       ("orders_interval", uplink.orders_interval)):  # fmt: skip
        if value <= 0:
            raise ConfigError(f"uplink.{key} must be > 0, got {value}")
    if uplink.backoff_max < uplink.backoff_base:
        raise ConfigError("uplink.backoff_max must be >= uplink.backoff_base")
    if uplink.bandwidth < 0:
        raise ConfigError(f"uplink.bandwidth must be >= 0 (0 = unlimited), got {uplink.bandwidth}")
    if uplink.bundle_key and not _is_ed25519_key(uplink.bundle_key):
        raise ConfigError("uplink.bundle_key must be the hub's public key as printed by "
                          "`mekong bundle key --data HUB` (32 bytes in base64)")  # fmt: skip


def validate_reclaim(config: NodeConfig) -> None:
    reclaim = config.reclaim
    if not reclaim.enabled:
        return
    if not config.hub.enabled:
        raise ConfigError("reclaim.enabled needs an enrolled hub (hub.url): the hub keeps the "
                          "copy a freed study is fetched back from")  # fmt: skip
    if reclaim.after_days < 0 or reclaim.interval <= 0:
        raise ConfigError("reclaim.after_days must be >= 0 and reclaim.interval > 0")
    if not 0 <= reclaim.min_free_percent < 100:
        raise ConfigError(f"reclaim.min_free_percent must be 0..99, got {reclaim.min_free_percent}")


_CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00")


def validate_window(window: UplinkWindow, key: str) -> None:
    for name in ("start", "end"):
        if not _CLOCK.fullmatch(getattr(window, name)):
            raise ConfigError(f"{key}.{name} must be HH:MM (00:00..24:00), got "
                              f"{getattr(window, name)!r}")  # fmt: skip
    if window.bandwidth < 0:
        raise ConfigError(f"{key}.bandwidth must be >= 0 (0 = unlimited)")


def _is_ed25519_key(text: str) -> bool:
    try:
        return len(base64.b64decode(text.strip(), validate=True)) == 32
    except binascii.Error:
        return False


def validate_hub(config: NodeConfig) -> None:
    hub = config.hub
    if not 1 <= hub.mtls_port <= 65535:
        raise ConfigError(f"hub.mtls_port must be 1..65535, got {hub.mtls_port}")
    if hub.upload_max_age_hours <= 0:
        raise ConfigError(f"hub.upload_max_age_hours must be > 0, got {hub.upload_max_age_hours}")
    if hub.token_hours <= 0 or hub.client_cert_days < 1 or hub.report_interval <= 0:
        raise ConfigError(
            "hub.token_hours and hub.report_interval must be > 0, hub.client_cert_days >= 1"
        )
    _check_url("hub.mtls_url", hub.mtls_url)
    if not hub.url:
        return
    _check_url("hub.url", hub.url)
    if config.uplink.url:
        raise ConfigError(
            "hub.url and uplink.url both set: an enrolled edge sends to its hub; "
            "use uplink.url only for another DICOMweb destination"
        )
    if hub.ca_file and not Path(hub.ca_file).is_file():
        raise ConfigError(f"hub.ca_file: no such file {hub.ca_file!r}")
