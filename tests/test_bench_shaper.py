"""The benchmark's bandwidth-limited proxy: the token bucket's arithmetic (no timing)."""

from __future__ import annotations

import pytest

from tools.bench.shaper import CHUNK, Bucket, ShapedProxy


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


def test_the_count_starts_with_the_first_bulk_transfer_not_a_small_poll() -> None:
    proxy = ShapedProxy(rate=1e6)
    try:
        proxy._count_up(500, now=10.0)  # a health report
        proxy._count_up(CHUNK, now=12.0)  # the upload begins…
        for n in range(1, 20):
            proxy._count_up(CHUNK, now=12.0 + n * 0.01)
        proxy._count_up(CHUNK, now=13.0)  # …pauses ~0.8 s (the hub answers), goes on
        assert proxy.first_up == 12.0
        assert proxy.idle == [pytest.approx(0.81)]
        assert proxy.up_bytes == 500 + 21 * CHUNK
    finally:
        proxy.close()
