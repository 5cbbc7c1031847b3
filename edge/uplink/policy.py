"""Retry policy (PACS-19, QOS-3): capped exponential back-off with jitter, and which failures
are transient (retried without limit: nothing acknowledged is ever given up on because the WAN
or the hub is down) or permanent (dead-lettered after ``max_attempts``)."""

from __future__ import annotations

import random

# STOW-RS Failure Reason (0008,1197) values worth retrying: the destination is out of
# resources or failed while processing; anything else (cannot understand, wrong study, SOP
# class not supported …) will fail again the same way.
TRANSIENT_REASONS = frozenset({0xA700, 0xA701, 0xA702, 0x0110, 0x0111, 0x0212, 0x0213})


def backoff(failures: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after ``failures`` consecutive failures (>= 1): "equal jitter", between
    half and all of ``min(cap, base * 2**(failures-1))``."""
    ceiling = min(cap, base * 2 ** min(max(failures - 1, 0), 30))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def transient_status(status: int) -> bool:
    """HTTP statuses of a whole request worth retrying."""
    return status >= 500 or status in (408, 425, 429)


def transient_reason(reason: int | None) -> bool:
    return reason is None or reason in TRANSIENT_REASONS
