"""Typed, validated node configuration: defaults < TOML file < command-line flags.

One frozen object describes a node; every component reads its settings from it. A bad value
raises :class:`ConfigError` with a message naming the key, which the CLI prints as one line
before exiting with status 2.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mekong.shared.auth.roles import ASSIGNABLE_ROLES
from mekong.shared.dicom.uids import check_root

MODES = ("edge", "hub")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
UNKNOWN_CALLER_POLICIES = ("accept", "reject")
DUPLICATE_POLICIES = ("keep_first", "replace")
WORKLIST_STATUSES = ("SCHEDULED", "ARRIVED", "IN_PROGRESS")  # never a final status
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE: no backslash, no control
# One CSP source expression (CSP3 "frame-ancestors"): a keyword, a scheme, or a host source.
_CSP_SOURCE = re.compile(
    r"^(?:'self'|'none'|[A-Za-z][A-Za-z0-9+.-]*:"
    r"|(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:\*|(?:\*\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)"
    r"(?::(?:[0-9]{1,5}|\*))?(?:/[A-Za-z0-9._~%!$&()*+=:@/-]*)?)$"
)


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


@dataclass(frozen=True)
class DicomConfig:
    port: int = 11112
    ae_title: str = "MEKONG"
    unknown_callers: str = "accept"
    duplicate_policy: str = "keep_first"
    max_pdu: int = 0  # 0 = unlimited
    network_timeout: float = 30.0
    max_associations: int = 32
    workers: int = 2  # DICOM receiving processes sharing the port (SO_REUSEPORT)
    tls_port: int = 0  # DICOM over TLS (needs [tls]); 0 = off. Usual: 2762
    # scheduled step statuses the Modality Worklist offers (SCHEDULED, ARRIVED, IN_PROGRESS)
    worklist_statuses: tuple[str, ...] = ("SCHEDULED", "ARRIVED")
    # root of the UIDs Mekong makes (RIS-9.3); "" = UUID-derived 2.25.… UIDs
    uid_root: str = ""


@dataclass(frozen=True)
class HttpConfig:
    port: int = 8080
    viewer_dir: Path | None = None  # None: build/ohif/ of the source tree (tools/fetch_viewer.py)
    frame_ancestors: str = "'self'"  # CSP frame-ancestors: who may show the viewer in a frame


HL7_OUT_TYPES = ("ORM^O01", "OMI^O23")
_DESTINATION_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Hl7Destination:
    """One HIS (or other system) that receives Mekong's status messages (RIS-6.2)."""

    name: str = ""
    host: str = ""
    port: int = 0
    message_type: str = "ORM^O01"  # or "OMI^O23"
    enabled: bool = True
    receiving_application: str = ""  # MSH-5
    receiving_facility: str = ""  # MSH-6
    viewer_url: str = ""  # base of the viewer link sent to this HIS; default hl7.viewer_url


@dataclass(frozen=True)
class Hl7Config:
    port: int = 2575
    tls_port: int = 0  # MLLP over TLS (needs [tls]; with tls.client_ca, mutual); 0 = off
    destinations: tuple[Hl7Destination, ...] = ()
    max_attempts: int = 20  # deliveries tried before a message is dead-lettered
    retry_initial_seconds: float = 2.0  # first back-off; doubles per attempt
    retry_max_seconds: float = 300.0  # back-off cap
    ack_timeout_seconds: float = 30.0  # no ACK within this: the attempt failed
    viewer_url: str = ""  # base URL of the viewer for the HIS; default http://bind:http.port


@dataclass(frozen=True)
class ReconConfig:
    """Reconciliation of stored studies with orders (RIS-3.8, FLOW-1/2)."""

    enabled: bool = True
    poll_seconds: float = 1.0  # how often commits of other processes are looked for
    settle_seconds: float = 2.0  # coerce a study's new instances once it received none this long
    complete_after_idle_seconds: float = 900.0  # 0 = never complete a step on idle
    suggest_before_minutes: int = 120  # suggestion window around the scheduled start
    suggest_after_minutes: int = 360


@dataclass(frozen=True)
class TlsConfig:
    cert: str = ""  # PEM certificate (chain); with key: HTTPS, DICOM TLS, MLLP over TLS
    key: str = ""
    client_ca: str = ""  # optional: require client certificates signed by this CA

    @property
    def enabled(self) -> bool:
        return bool(self.cert and self.key)


@dataclass(frozen=True)
class AuthConfig:
    idle_minutes: int = 30  # a session unused this long is logged out (QOS-1.4)
    password_expiry_days: int = 90  # 0 = never (SEC-4: 30/60/90)
    admin_totp: bool = True  # admins must use a TOTP second factor (SEC-6.4)
    # trusted LAN modalities: requests without credentials from these networks act as this role
    anonymous_role: str = ""
    anonymous_networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class LdapConfig:
    """Optional sign-in against the hospital directory (PACS-4.6); see docs/security.md."""

    enabled: bool = False
    url: str = ""  # ldaps://dc.benhvien.vn or ldap://dc.benhvien.vn:389
    start_tls: bool = False  # ldap:// upgraded with StartTLS
    ca_file: str = ""  # CA bundle for ldaps:// / StartTLS (default: the system's)
    timeout_seconds: float = 3.0  # connect and each answer; an outage must not stall sign-in
    # either bind straight as the user ("uid={username},ou=people,dc=benhvien,dc=vn") ...
    user_dn_template: str = ""
    # ... or search for the user (with this service account; "" = anonymous), then bind
    bind_dn: str = ""
    bind_password_file: str = ""  # the service account's password: a file (mode 0600) ...
    bind_password_env: str = ""  # ... or the name of an environment variable
    user_base: str = ""  # e.g. "ou=people,dc=benhvien,dc=vn"
    user_filter: str = "(uid={username})"
    username_attribute: str = "uid"  # sAMAccountName on Active Directory
    display_name_attribute: str = "displayName"
    group_base: str = ""  # groups are also searched here ("" = only the user's memberOf)
    group_filter: str = "(|(member={user_dn})(uniqueMember={user_dn}))"
    # group DN → Mekong role; the first listed group the user is in wins
    group_roles: tuple[tuple[str, str], ...] = ()
    default_role: str = ""  # role of users in none of the groups; "" = they are refused


SYSLOG_FACILITIES = {"auth": 4, "authpriv": 10, **{f"local{n}": 16 + n for n in range(8)}}


@dataclass(frozen=True)
class AuditConfig:
    """Forwarding sealed audit events to a syslog collector (GEN-3, PACS-16; RFC 5424/5425)."""

    syslog_url: str = ""  # tls://collector.benhvien.vn:6514 ("tcp://…" only for a test bench)
    syslog_ca_file: str = ""  # CA that signed the collector's certificate (default: the system's)
    syslog_client_cert: str = ""  # optional client certificate (PEM) + key for mutual TLS
    syslog_client_key: str = ""
    syslog_facility: str = "authpriv"  # authpriv (10, as IHE ATNA) or auth, local0..local7
    syslog_hostname: str = ""  # HOSTNAME field; "" = this machine's name


CAPTURE_KINDS = ("endoscopy", "ultrasound", "other")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
_DEVICE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class CaptureDeviceConfig:
    """One frame grabber, stream or demo file the edge records from (RIS-5.6, RIS-6.7)."""

    name: str = ""  # 1-32 letters, digits, '_', '.', '-': the device's key in URLs
    source: str = ""  # /dev/videoN, rtsp://…, http://…, or a video file path (demos, tests)
    kind: str = "other"  # endoscopy | ultrasound | other: which DICOM objects it makes
    label: str = ""  # what people see, e.g. "Máy nội soi phòng 2"
    width: int = 0  # asked of a live device; 0 = its own
    height: int = 0
    fps: float = 30.0  # the clip's constant frame rate
    crop: tuple[int, ...] = ()  # x, y, width, height kept of each frame; () = whole frame
    modality: str = ""  # default by kind: ES, US, XC
    anatomic_region: str = ""  # "code^scheme^meaning", e.g. "69695003^SCT^Stomach"
    preset: str = "ultrafast"  # libx264 speed preset of live clips
    crf: int = 23  # libx264 quality (lower = better, larger)


@dataclass(frozen=True)
class WatchFolderConfig:
    """A folder a non-DICOM device drops JPEG/PNG/PDF/MP4 files into (RIS-5.7, RIS-6.8)."""

    path: str = ""
    device: str = ""  # a capture device name (its kind is used) or any name for the series
    kind: str = "other"  # when ``device`` is not a capture device
    accession_pattern: str = ""  # regex on the file name; group "accession" (or group 1)
    accession: str = ""  # used when the pattern is unset or does not match
    stable_seconds: float = 2.0  # a file is taken once its size stayed the same this long


KEY_ATTRIBUTES = ("AccessionNumber", "PatientID", "StudyDescription", "RequestedProcedureID",
                  "PatientName")  # fmt: skip


@dataclass(frozen=True)
class KeyDeviceConfig:
    """A modality without worklist whose technician scans the order's QR label (FEAT-5):
    which DICOM attribute the scanned key lands in, and a regex that finds it there."""

    ae_title: str = ""  # the modality's calling AE title
    attribute: str = "AccessionNumber"  # one of KEY_ATTRIBUTES
    regex: str = ""  # optional: group "key" (or group 1, or the whole match) is the key
    label: str = ""  # what people see, e.g. "Máy X quang phòng 3"


@dataclass(frozen=True)
class EdgeConfig:
    capture_devices: tuple[CaptureDeviceConfig, ...] = ()
    watch_folders: tuple[WatchFolderConfig, ...] = ()
    key_devices: tuple[KeyDeviceConfig, ...] = ()


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


@dataclass(frozen=True)
class NodeConfig:
    mode: str = "edge"
    data_dir: Path = Path("data")
    bind: str = "127.0.0.1"
    log_level: str = "INFO"
    dicom: DicomConfig = field(default_factory=DicomConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    hl7: Hl7Config = field(default_factory=Hl7Config)
    auth: AuthConfig = field(default_factory=AuthConfig)
    ldap: LdapConfig = field(default_factory=LdapConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    uplink: UplinkConfig = field(default_factory=UplinkConfig)
    recon: ReconConfig = field(default_factory=ReconConfig)
    edge: EdgeConfig = field(default_factory=EdgeConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    reclaim: ReclaimConfig = field(default_factory=ReclaimConfig)
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)

    @property
    def index_path(self) -> Path:
        return self.data_dir / "index.db"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


_SECTIONS = {
    "dicom": DicomConfig, "http": HttpConfig, "hl7": Hl7Config, "auth": AuthConfig,
    "tls": TlsConfig, "uplink": UplinkConfig, "recon": ReconConfig, "edge": EdgeConfig,
    "hub": HubConfig, "reclaim": ReclaimConfig, "discovery": DiscoveryConfig,
    "ldap": LdapConfig, "audit": AuditConfig,
}  # fmt: skip
_TABLE_ARRAYS = {
    "tuple[Hl7Destination, ...]": Hl7Destination,
    "tuple[CaptureDeviceConfig, ...]": CaptureDeviceConfig,
    "tuple[WatchFolderConfig, ...]": WatchFolderConfig,
    "tuple[KeyDeviceConfig, ...]": KeyDeviceConfig,
    "tuple[UplinkWindow, ...]": UplinkWindow,
}


def load_config(file: Path | None = None, overrides: dict[str, Any] | None = None) -> NodeConfig:
    """Build the node configuration.

    ``overrides`` uses dotted keys (``"dicom.port"``, ``"mode"``); ``None`` values are ignored so
    unset command-line flags fall through to the file and the defaults.
    """
    raw: dict[str, Any] = _read_toml(file) if file else {}
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(raw, key, value)
    config = _build(raw)
    validate(config)
    return config


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with open(file, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {file}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    target = raw
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def _build(raw: dict[str, Any]) -> NodeConfig:
    top: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            top[key] = _section(_SECTIONS[key], key, value)
        elif key in _field_types(NodeConfig):
            top[key] = _coerce(key, value, _field_types(NodeConfig)[key])
        else:
            raise ConfigError(f"unknown config key '{key}'")
    return NodeConfig(**top)


def _section(cls: type, name: str, values: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"config key '{name}' must be a table")
    types = _field_types(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in types:
            raise ConfigError(f"unknown config key '{name}.{key}'")
        kwargs[key] = _coerce(f"{name}.{key}", value, types[key])
    return cls(**kwargs)


def _field_types(cls: type) -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(cls)}


def _coerce(key: str, value: Any, type_name: str) -> Any:
    if type_name in _TABLE_ARRAYS:
        return _table_array(key, value, _TABLE_ARRAYS[type_name])
    if type_name == "tuple[tuple[str, str], ...]":
        return _string_table(key, value)
    try:
        if type_name == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError
            return value
        if type_name == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError
            return float(value)
        if type_name == "bool":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if type_name == "tuple[str, ...]":
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ValueError
            return tuple(value)
        if type_name == "tuple[int, ...]":
            if not isinstance(value, list | tuple) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            ):
                raise ValueError
            return tuple(value)
        if type_name in ("Path", "Path | None"):
            return Path(value)
        if type_name == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        wanted = type_name.removesuffix(" | None")
        raise ConfigError(f"config key '{key}' must be {wanted}, got {value!r}") from None
    return value


def _table_array(key: str, value: Any, cls: type) -> tuple:
    """``[[edge.capture_devices]]``: an array of tables, each checked like a section."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"config key '{key}' must be an array of tables ([[{key}]])")
    return tuple(_section(cls, f"{key}[{n}]", item) for n, item in enumerate(value))


def _string_table(key: str, value: Any) -> tuple[tuple[str, str], ...]:
    """``[ldap.group_roles]``: a table of strings, kept in the order it was written."""
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"config key '{key}' must be a table of strings")
    return tuple((str(k), v) for k, v in value.items())


def validate(config: NodeConfig) -> None:
    """Raise ConfigError for the first invalid value."""
    _one_of("mode", config.mode, MODES)
    _one_of("log_level", config.log_level.upper(), LOG_LEVELS)
    _one_of("dicom.unknown_callers", config.dicom.unknown_callers, UNKNOWN_CALLER_POLICIES)
    _one_of("dicom.duplicate_policy", config.dicom.duplicate_policy, DUPLICATE_POLICIES)
    try:
        ipaddress.ip_address(config.bind)
    except ValueError:
        raise ConfigError(f"bind must be an IP address, got {config.bind!r}") from None
    for key, port in (
        ("dicom.port", config.dicom.port),
        ("http.port", config.http.port),
        ("hl7.port", config.hl7.port),
        ("dicom.tls_port", config.dicom.tls_port),
        ("hl7.tls_port", config.hl7.tls_port),
    ):
        if not 0 <= port <= 65535:
            raise ConfigError(f"{key} must be 0..65535, got {port}")
    _validate_frame_ancestors(config.http.frame_ancestors)
    if not is_valid_ae_title(config.dicom.ae_title):
        raise ConfigError(
            f"dicom.ae_title must be 1-16 printable ASCII characters without '\\', "
            f"got {config.dicom.ae_title!r}"
        )
    if config.dicom.max_pdu < 0 or config.dicom.network_timeout <= 0:
        raise ConfigError("dicom.max_pdu must be >= 0 and dicom.network_timeout > 0")
    if not 1 <= config.dicom.workers <= 16:
        raise ConfigError(f"dicom.workers must be 1..16, got {config.dicom.workers}")
    _validate_auth(config.auth)
    _validate_ldap(config.ldap)
    _validate_audit(config.audit)
    _validate_tls(config)
    _validate_uplink(config.uplink)
    _validate_hub(config)
    _validate_worklist(config.dicom)
    try:
        check_root(config.dicom.uid_root)
    except ValueError as error:
        raise ConfigError(f"dicom.uid_root: {error}") from None
    _validate_hl7(config.hl7)
    _validate_recon(config.recon)
    _validate_reclaim(config)
    _one_of("discovery.enabled", config.discovery.enabled, ("auto", "on", "off"))
    for number, window in enumerate(config.uplink.schedule):  # also for an enrolled edge
        _validate_window(window, f"uplink.schedule[{number}]")
    validate_edge(config.edge)
    if config.dicom.max_associations < 1:
        raise ConfigError(
            f"dicom.max_associations must be >= 1, got {config.dicom.max_associations}"
        )


def _validate_frame_ancestors(value: str) -> None:
    sources = value.split()
    valid = bool(sources) and all(_CSP_SOURCE.match(s) for s in sources)
    if not valid or ("'none'" in sources and len(sources) > 1):
        raise ConfigError(
            "http.frame_ancestors must be CSP sources separated by spaces, such as "
            f"\"'self' https://his.example.org\" or \"'none'\"; got {value!r}"
        )


def _validate_worklist(dicom: DicomConfig) -> None:
    if not dicom.worklist_statuses:
        raise ConfigError("dicom.worklist_statuses must name at least one status")
    for status in dicom.worklist_statuses:
        _one_of("dicom.worklist_statuses", status, WORKLIST_STATUSES)


def _validate_auth(auth: AuthConfig) -> None:
    if auth.idle_minutes < 1 or auth.password_expiry_days < 0:
        raise ConfigError("auth.idle_minutes must be >= 1 and auth.password_expiry_days >= 0")
    if auth.anonymous_role:
        _one_of(
            "auth.anonymous_role", auth.anonymous_role, tuple(r.value for r in ASSIGNABLE_ROLES)
        )
    for network in auth.anonymous_networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"auth.anonymous_networks: {network!r} is not a network") from None


def _validate_ldap(ldap: LdapConfig) -> None:
    if not ldap.enabled:
        return
    if not re.match(r"^ldaps?://[^\s/]+/?$", ldap.url):
        raise ConfigError(f"ldap.url must be ldap://host[:port] or ldaps://host[:port], "
                          f"got {ldap.url!r}")  # fmt: skip
    if ldap.start_tls and ldap.url.startswith("ldaps://"):
        raise ConfigError("ldap.start_tls is for ldap:// URLs; ldaps:// is TLS already")
    if not 0 < ldap.timeout_seconds <= 60:
        raise ConfigError(f"ldap.timeout_seconds must be 0..60, got {ldap.timeout_seconds}")
    if not ldap.user_dn_template and not ldap.user_base:
        raise ConfigError("ldap needs user_dn_template (bind as the user) or user_base "
                          "(search, then bind)")  # fmt: skip
    if ldap.user_dn_template and "{username}" not in ldap.user_dn_template:
        raise ConfigError("ldap.user_dn_template must contain {username}")
    if "{username}" not in ldap.user_filter:
        raise ConfigError("ldap.user_filter must contain {username}")
    if ldap.bind_password_file and ldap.bind_password_env:
        raise ConfigError("ldap.bind_password_file and ldap.bind_password_env: set one")
    for name in ("ca_file", "bind_password_file"):
        value = getattr(ldap, name)
        if value and not Path(value).is_file():
            raise ConfigError(f"ldap.{name}: no such file {value!r}")
    roles = tuple(r.value for r in ASSIGNABLE_ROLES)
    for group, role in ldap.group_roles:
        _one_of(f"ldap.group_roles.{group!r}", role, roles)
    if ldap.default_role:
        _one_of("ldap.default_role", ldap.default_role, roles)
    if not ldap.group_roles and not ldap.default_role:
        raise ConfigError("ldap needs group_roles (group DN = role) or a default_role")


def _validate_audit(audit: AuditConfig) -> None:
    _one_of("audit.syslog_facility", audit.syslog_facility, tuple(SYSLOG_FACILITIES))
    if not audit.syslog_url:
        return
    parts = urlsplit(audit.syslog_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("tls", "tcp") or not parts.hostname or not port:
        raise ConfigError(f"audit.syslog_url must be tls://host:port (or tcp://host:port), "
                          f"got {audit.syslog_url!r}")  # fmt: skip
    if bool(audit.syslog_client_cert) != bool(audit.syslog_client_key):
        raise ConfigError("audit.syslog_client_cert and audit.syslog_client_key go together")
    for name in ("syslog_ca_file", "syslog_client_cert", "syslog_client_key"):
        value = getattr(audit, name)
        if value and not Path(value).is_file():
            raise ConfigError(f"audit.{name}: no such file {value!r}")


def _validate_tls(config: NodeConfig) -> None:
    tls = config.tls
    if bool(tls.cert) != bool(tls.key):
        raise ConfigError("tls.cert and tls.key go together: set both or neither")
    for key, value in (
        ("tls.cert", tls.cert),
        ("tls.key", tls.key),
        ("tls.client_ca", tls.client_ca),
    ):
        if value and not Path(value).is_file():
            raise ConfigError(f"{key}: no such file {value!r} (make one: mekong tls self-signed)")
    if config.dicom.tls_port and not tls.enabled:
        raise ConfigError("dicom.tls_port needs tls.cert and tls.key")
    if config.hl7.tls_port and not tls.enabled:
        raise ConfigError("hl7.tls_port needs tls.cert and tls.key")


def _validate_uplink(uplink: UplinkConfig) -> None:
    if uplink.resumable_bytes < 0:
        raise ConfigError(f"uplink.resumable_bytes must be >= 0 (0 = never), got "
                          f"{uplink.resumable_bytes}")  # fmt: skip
    if not 64 * 1024 <= uplink.chunk_bytes <= 64 * 1024 * 1024:
        raise ConfigError(f"uplink.chunk_bytes must be 64 KiB..64 MiB, got {uplink.chunk_bytes}")
    if not uplink.enabled:
        return
    parsed = urlsplit(uplink.url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"uplink.url must be an http(s) URL, got {uplink.url!r}")
    if not uplink.token.strip():
        raise ConfigError(
            "uplink.token is needed with uplink.url (mekong token create … --data HUB)"
        )
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


def _validate_reclaim(config: NodeConfig) -> None:
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


def _validate_window(window: UplinkWindow, key: str) -> None:
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


def _validate_hub(config: NodeConfig) -> None:
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


def _validate_hl7(hl7: Hl7Config) -> None:
    if hl7.max_attempts < 1:
        raise ConfigError(f"hl7.max_attempts must be >= 1, got {hl7.max_attempts}")
    if not 0 < hl7.retry_initial_seconds <= hl7.retry_max_seconds:
        raise ConfigError("hl7.retry_initial_seconds must be > 0 and <= hl7.retry_max_seconds")
    if hl7.ack_timeout_seconds <= 0:
        raise ConfigError("hl7.ack_timeout_seconds must be > 0")
    _check_url("hl7.viewer_url", hl7.viewer_url)
    names: set[str] = set()
    for n, dest in enumerate(hl7.destinations):
        key = f"hl7.destinations[{n}]"
        if not _DESTINATION_NAME.match(dest.name):
            raise ConfigError(f"{key}.name must be 1-64 letters, digits, '_', '.' or '-', "
                              f"got {dest.name!r}")  # fmt: skip
        if dest.name in names:
            raise ConfigError(f"{key}.name {dest.name!r} is used twice")
        names.add(dest.name)
        if not dest.host.strip():
            raise ConfigError(f"{key}.host is required (host name or IP address)")
        if not 1 <= dest.port <= 65535:
            raise ConfigError(f"{key}.port must be 1..65535, got {dest.port}")
        _one_of(f"{key}.message_type", dest.message_type, HL7_OUT_TYPES)
        _check_url(f"{key}.viewer_url", dest.viewer_url)


def _check_url(key: str, value: str) -> None:
    if value and not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"{key} must be an http:// or https:// URL, got {value!r}")


def _validate_recon(recon: ReconConfig) -> None:
    if recon.poll_seconds <= 0 or recon.complete_after_idle_seconds < 0:
        raise ConfigError(
            "recon.poll_seconds must be > 0 and recon.complete_after_idle_seconds >= 0"
        )
    if recon.settle_seconds < 0:
        raise ConfigError(f"recon.settle_seconds must be >= 0, got {recon.settle_seconds}")
    if recon.suggest_before_minutes < 0 or recon.suggest_after_minutes < 0:
        raise ConfigError("recon.suggest_before_minutes and suggest_after_minutes must be >= 0")


def validate_edge(edge: EdgeConfig) -> None:
    names: set[str] = set()
    for n, device in enumerate(edge.capture_devices):
        validate_capture_device(device, f"edge.capture_devices[{n}]")
        if device.name in names:
            raise ConfigError(f"edge.capture_devices[{n}].name {device.name!r} is used twice")
        names.add(device.name)
    for n, folder in enumerate(edge.watch_folders):
        _validate_watch_folder(folder, f"edge.watch_folders[{n}]")
    titles: set[str] = set()
    for n, device in enumerate(edge.key_devices):
        key = f"edge.key_devices[{n}]"
        _validate_key_device(device, key)
        if device.ae_title in titles:
            raise ConfigError(f"{key}.ae_title {device.ae_title!r} is used twice")
        titles.add(device.ae_title)


def _validate_key_device(device: KeyDeviceConfig, key: str) -> None:
    if not is_valid_ae_title(device.ae_title):
        raise ConfigError(f"{key}.ae_title must be the modality's AE title (1-16 characters), "
                          f"got {device.ae_title!r}")  # fmt: skip
    _one_of(f"{key}.attribute", device.attribute, KEY_ATTRIBUTES)
    if device.regex:
        try:
            re.compile(device.regex)
        except re.error as exc:
            raise ConfigError(f"{key}.regex is not a regular expression: {exc}") from None


def validate_capture_device(device: CaptureDeviceConfig, key: str) -> None:
    """Raise ConfigError naming ``key`` (a config path, or "device" for the REST API)."""
    if not _DEVICE_NAME.match(device.name):
        raise ConfigError(
            f"{key}.name must be 1-32 letters, digits, '_', '.' or '-', got {device.name!r}"
        )
    if not device.source.strip():
        raise ConfigError(f"{key}.source is required: /dev/videoN, a stream URL or a file")
    _one_of(f"{key}.kind", device.kind, CAPTURE_KINDS)
    _one_of(f"{key}.preset", device.preset, X264_PRESETS)
    if not 0 < device.fps <= 120:
        raise ConfigError(f"{key}.fps must be > 0 and <= 120, got {device.fps}")
    if device.width < 0 or device.height < 0 or not 0 <= device.crf <= 51:
        raise ConfigError(f"{key}: width and height must be >= 0 and crf 0..51")
    if device.crop and (len(device.crop) != 4 or min(device.crop) < 0 or min(device.crop[2:]) < 16):
        raise ConfigError(
            f"{key}.crop must be [x, y, width, height] with width and height >= 16, "
            f"got {list(device.crop)}"
        )
    if device.modality and not re.match(r"^[A-Z]{2,16}$", device.modality):
        raise ConfigError(f"{key}.modality must be a DICOM modality such as ES, got "
                          f"{device.modality!r}")  # fmt: skip
    if device.anatomic_region and device.anatomic_region.count("^") != 2:
        raise ConfigError(f"{key}.anatomic_region must be 'code^scheme^meaning', got "
                          f"{device.anatomic_region!r}")  # fmt: skip


def _validate_watch_folder(folder: WatchFolderConfig, key: str) -> None:
    if not folder.path.strip():
        raise ConfigError(f"{key}.path is required")
    _one_of(f"{key}.kind", folder.kind, CAPTURE_KINDS)
    if folder.stable_seconds < 0:
        raise ConfigError(f"{key}.stable_seconds must be >= 0")
    if folder.accession_pattern:
        try:
            re.compile(folder.accession_pattern)
        except re.error as exc:
            raise ConfigError(f"{key}.accession_pattern is not a regular expression: "
                              f"{exc}") from None  # fmt: skip
    if not folder.accession_pattern and not folder.accession:
        raise ConfigError(f"{key}: set accession_pattern, accession, or both")


def is_valid_ae_title(title: str) -> bool:
    return bool(_AE_TITLE.match(title)) and bool(title.strip())


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
