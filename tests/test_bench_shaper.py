"""The benchmark's bandwidth-limited proxy: the token bucket's arithmetic (no timing)."""

from __future__ import annotations

import pytest

from tools.bench.shaper import Bucket


def test_a_burst_goes_at_once_then_the_rate_holds() -> None:
    bucket = Bucket(rate=1000.0, burst=500.0)
    assert bucket.reserve(500, now=0.0) == 0.0
    assert bucket.reserve(1000, now=0.0) == pytest.approx(1.0)  # 1000 bytes at 1000 B/s
    assert bucket.reserve(1000, now=0.0) == pytest.approx(2.0)  # queued behind the first


def test_time_refills_the_bucket_but_never_beyond_the_burst() -> None:
    bucket = Bucket(rate=1000.0, burst=500.0)
    bucket.reserve(500, now=0.0)
    assert bucket.reserve(250, now=0.25) == 0.0  # 250 bytes came back in 0.25 s
    assert bucket.reserve(500, now=100.0) == 0.0  # idle: full again, but only 500
    assert bucket.reserve(1, now=100.0) == pytest.approx(0.001)


def test_many_chunks_average_to_the_rate() -> None:
    bucket, now = Bucket(rate=2_500_000.0), 0.0
    for _ in range(1000):  # a sender that always waits as told
        now += bucket.reserve(16384, now)
    assert 1000 * 16384 / now == pytest.approx(2_500_000.0, rel=0.01)


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Bucket(rate=0.0)
