"""Typed, validated node configuration: defaults < TOML file < command-line flags.

One frozen object describes a node; every component reads its settings from it. A bad value
raises :class:`ConfigError` with a message naming the key, which the CLI prints as one line
before exiting with status 2.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mekong.shared.auth.roles import ASSIGNABLE_ROLES
from mekong.shared.config_checks import ConfigError as ConfigError
from mekong.shared.config_checks import check_url as _check_url
from mekong.shared.config_checks import is_valid_ae_title as is_valid_ae_title
from mekong.shared.config_checks import one_of as _one_of
from mekong.shared.config_edge import CAPTURE_KINDS as CAPTURE_KINDS
from mekong.shared.config_edge import CaptureDeviceConfig as CaptureDeviceConfig
from mekong.shared.config_edge import EdgeConfig as EdgeConfig
from mekong.shared.config_edge import KeyDeviceConfig as KeyDeviceConfig
from mekong.shared.config_edge import WatchFolderConfig as WatchFolderConfig
from mekong.shared.config_edge import validate_capture_device as validate_capture_device
from mekong.shared.config_edge import validate_edge as validate_edge
from mekong.shared.config_sync import (
    DiscoveryConfig,
    ReclaimConfig,
    validate_hub,
    validate_reclaim,
    validate_uplink,
    validate_window,
)
from mekong.shared.config_sync import HubConfig as HubConfig
from mekong.shared.config_sync import UplinkConfig as UplinkConfig
from mekong.shared.config_sync import UplinkWindow as UplinkWindow
from mekong.shared.dicom.uids import check_root

MODES = ("edge", "hub")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
UNKNOWN_CALLER_POLICIES = ("accept", "reject")
DUPLICATE_POLICIES = ("keep_first", "replace")
WORKLIST_STATUSES = ("SCHEDULED", "ARRIVED", "IN_PROGRESS")  # never a final status
# One CSP source expression (CSP3 "frame-ancestors"): a keyword, a scheme, or a host source.
_CSP_SOURCE = re.compile(
    r"^(?:'self'|'none'|[A-Za-z][A-Za-z0-9+.-]*:"
    r"|(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:\*|(?:\*\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)"
    r"(?::(?:[0-9]{1,5}|\*))?(?:/[A-Za-z0-9._~%!$&()*+=:@/-]*)?)$"
)


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


@dataclass(frozen=True)
class BackupConfig:
    """Scheduled backups (QOS-5): every day at ``at`` (local time) into ``to``; off while empty."""

    to: str = ""  # a folder on another disk or a NAS mount, e.g. /mnt/nas/mekong-backup
    at: str = "02:00"  # HH:MM
    keep: int = 7  # snapshots kept (the older ones and the blobs only they needed are removed)


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
    backup: BackupConfig = field(default_factory=BackupConfig)
    config_file: Path | None = None  # the TOML file this came from (kept with each backup)

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
    "ldap": LdapConfig, "audit": AuditConfig, "backup": BackupConfig,
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
    config = dataclasses.replace(_build(raw), config_file=file)
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
        elif key in _field_types(NodeConfig) and key != "config_file":  # not a setting
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
    _validate_backup(config.backup)
    _validate_audit(config.audit)
    _validate_tls(config)
    validate_uplink(config.uplink)
    validate_hub(config)
    _validate_worklist(config.dicom)
    try:
        check_root(config.dicom.uid_root)
    except ValueError as error:
        raise ConfigError(f"dicom.uid_root: {error}") from None
    _validate_hl7(config.hl7)
    _validate_recon(config.recon)
    validate_reclaim(config)
    _one_of("discovery.enabled", config.discovery.enabled, ("auto", "on", "off"))
    for number, window in enumerate(config.uplink.schedule):  # also for an enrolled edge
        validate_window(window, f"uplink.schedule[{number}]")
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


def _validate_recon(recon: ReconConfig) -> None:
    if recon.poll_seconds <= 0 or recon.complete_after_idle_seconds < 0:
        raise ConfigError(
            "recon.poll_seconds must be > 0 and recon.complete_after_idle_seconds >= 0"
        )
    if recon.settle_seconds < 0:
        raise ConfigError(f"recon.settle_seconds must be >= 0, got {recon.settle_seconds}")
    if recon.suggest_before_minutes < 0 or recon.suggest_after_minutes < 0:
        raise ConfigError("recon.suggest_before_minutes and suggest_after_minutes must be >= 0")


def _validate_backup(backup: BackupConfig) -> None:
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", backup.at):
        raise ConfigError(f"backup.at must be HH:MM (00:00..23:59), got {backup.at!r}")
    if backup.keep < 1:
        raise ConfigError(f"backup.keep must be >= 1, got {backup.keep}")
    if backup.to and not Path(backup.to).is_absolute():
        raise ConfigError(f"backup.to must be an absolute folder path, got {backup.to!r}")
