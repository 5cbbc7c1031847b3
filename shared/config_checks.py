"""What the configuration modules share: the error every bad value raises (naming the key)
and the small checks they all use."""

from __future__ import annotations

import re

_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE: no backslash, no control


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


def is_valid_ae_title(title: str) -> bool:
    return bool(_AE_TITLE.match(title)) and bool(title.strip())


def one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")


def check_url(key: str, value: str) -> None:
    if value and not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"{key} must be an http:// or https:// URL, got {value!r}")
