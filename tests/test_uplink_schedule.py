"""Uplink schedule windows (QOS-3): a daytime cap, a night without limit, a paused window that
keeps the queue waiting — unit rules, and a paused edge whose instances wait, then go once the
window's rule is lifted."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from mekong.edge.uplink.schedule import PAUSED, Schedule
from mekong.shared.config import ConfigError, UplinkWindow, load_config
from tests.authn import add_token
from tests.conftest import ct_instances, index_digests, storescu
from tests.test_uplink import edge_config, wait_for

DAY = UplinkWindow("07:00", "17:00", bandwidth=250_000)
NIGHT_PAUSE = UplinkWindow("22:00", "05:30", pause=True)


@pytest.mark.parametrize(
    ("clock", "expected"),
    [("06:59", 2_000_000), ("07:00", 250_000), ("16:59", 250_000), ("17:00", 2_000_000),
     ("22:00", PAUSED), ("23:59", PAUSED), ("00:00", PAUSED), ("05:29", PAUSED),
     ("05:30", 2_000_000)],
)  # fmt: skip
def test_the_first_window_that_holds_gives_the_rule(clock: str, expected: int | None) -> None:
    now = datetime.datetime.combine(datetime.date(2026, 11, 26), datetime.time.fromisoformat(clock))
    assert Schedule((DAY, NIGHT_PAUSE), 2_000_000).rate_now(now) == expected


@pytest.mark.parametrize(
    ("window", "message"),
    [({"start": "7:00"}, "start must be HH:MM"), ({"end": "24:30"}, "end must be HH:MM"),
     ({"bandwidth": -5}, "bandwidth must be >= 0")],
)  # fmt: skip
def test_bad_windows_are_named(tmp_path: Path, window: dict, message: str) -> None:
    lines = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in window.items())
    (tmp_path / "n.toml").write_text(f"[[uplink.schedule]]\n{lines}")
    with pytest.raises(ConfigError, match=rf"uplink.schedule\[0\]\.{message}"):
        load_config(tmp_path / "n.toml")


def test_a_paused_window_keeps_the_queue_until_lifted(node_factory, tmp_path: Path) -> None:
    hub = node_factory("hub", mode="hub", trusted_loopback=False).start()
    token = add_token(hub, "edge_lich", "technician")
    url = f"http://127.0.0.1:{hub.http_port}/dicom-web"
    args = edge_config(tmp_path / "edge.toml", url, token)
    paused = '[[uplink.schedule]]\nstart = "00:00"\nend = "24:00"\npause = true\n'
    config = tmp_path / "edge.toml"
    config.write_text(config.read_text() + paused)
    edge = node_factory("edge", extra_args=args).start()
    files = ct_instances(tmp_path / "ct", 1, 3, size=64)
    assert storescu(edge, *files).returncode == 0
    wait_for(lambda: edge.health()["uplink"]["now"] == "paused by the schedule", 30, "paused")
    wait_for(lambda: edge.health()["uplink"]["counts"].get("queued", 0) == 3, 30, "queued")
    assert index_digests(hub.data_dir) == {}

    edge.stop()  # the window lifted (a configuration change): everything goes
    config.write_text(config.read_text().replace(paused, ""))
    edge.start()
    wait_for(lambda: index_digests(hub.data_dir) == index_digests(edge.data_dir), 60, "sent")
