"""OHIF in real Chromium against a node that requires sign-in (issue 3 "must show").

The browser signs in like the console does (session cookie + CSRF token), then opens the stable
viewer URL of a stored CT: the first image is drawn (not blank), the slice can be scrolled to
the last; an MPEG-4 endoscopy video plays from /rendered (byte ranges, cookie auth).
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from PIL import Image, ImageStat
from playwright.sync_api import Page

from tests.authn import STRONG, add_user
from tests.browser import chromium
from tests.conftest import dcmtk, storescu
from tests.nodeproc import AE_TITLE, NodeProcess
from tools import gendata

CT_SLICES = 5
_READERS = itertools.count(1)
_HAS_VIDEO_VIEWPORT = (
    "window.cornerstone && "
    "window.cornerstone.getEnabledElements().some(e => e.viewport.type === 'video')"
)
_VIDEO = "window.cornerstone.getEnabledElements()[0].viewport.videoElement"
_PLAY = (  # Cornerstone's video viewport keeps its <video> off the page: play it directly
    "(async () => { const v = " + _VIDEO + "; v.muted = true; await v.play();"
    " await new Promise(r => setTimeout(r, 1500));"
    " return {t: v.currentTime, duration: v.duration, error: v.error && v.error.code}; })()"
)


@pytest.fixture(scope="module")
def viewer_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, dict]]:
    root = tmp_path_factory.mktemp("viewer")
    node = NodeProcess(root / "data", trusted_loopback=False).start()
    ct = gendata.ct_series(root / "ct", count=CT_SLICES)
    storescu(node, *ct)
    video = gendata.video_endoscopic(root / "video")
    stored = dcmtk("storescu", "-R", "-xn", "-aec", AE_TITLE, "127.0.0.1",
                   str(node.dicom_port), str(video[0]))  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    studies = {
        "ct": pydicom.dcmread(ct[0], stop_before_pixels=True).StudyInstanceUID,
        "video": pydicom.dcmread(video[0], stop_before_pixels=True).StudyInstanceUID,
    }
    yield node, studies
    node.stop()


def sign_in(page: Page, node: NodeProcess) -> None:
    name = f"reader{next(_READERS)}"
    password = add_user(node, name, "radiologist")
    base = f"http://127.0.0.1:{node.http_port}"
    reply = page.request.post(f"{base}/api/auth/login",
                              data={"username": name, "password": password})  # fmt: skip
    assert reply.ok, reply.text()
    change = page.request.post(
        f"{base}/api/auth/password", headers={"X-CSRF-Token": reply.json()["csrf"]},
        data={"current_password": password, "new_password": STRONG},
    )  # fmt: skip
    assert change.ok, change.text()


def test_ct_opens_draws_and_scrolls_to_the_last_slice(viewer_node) -> None:  # type: ignore[no-untyped-def]
    node, studies = viewer_node
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        sign_in(page, node)
        page.goto(f"http://127.0.0.1:{node.http_port}/viewer?StudyInstanceUIDs={studies['ct']}")
        page.wait_for_function(f"document.body.innerText.includes('(1/{CT_SLICES})')",
                               timeout=90_000)  # fmt: skip
        canvas = page.wait_for_selector("canvas.cornerstone-canvas")
        assert canvas is not None
        page.wait_for_timeout(1500)  # let the first frame be decoded and drawn
        shot = Image.open(io.BytesIO(canvas.screenshot())).convert("L")
        assert ImageStat.Stat(shot).var[0] > 100, "the viewport is blank"
        canvas.click()
        page.keyboard.press("End")
        page.wait_for_function(f"document.body.innerText.includes('({CT_SLICES}/{CT_SLICES})')")
        assert not [e for e in errors if re.search(r"40[13]|Failed to load", e)], errors


def test_mpeg4_video_plays(viewer_node, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node, studies = viewer_node
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, node)
        page.goto(f"http://127.0.0.1:{node.http_port}/viewer?StudyInstanceUIDs={studies['video']}")
        page.wait_for_function(_HAS_VIDEO_VIEWPORT, timeout=90_000)
        assert page.evaluate(f"{_VIDEO}.src").endswith("/rendered")
        played = page.evaluate(_PLAY)
        assert played["error"] is None
        assert played["duration"] == pytest.approx(2.0, abs=0.1)  # 50 frames at 25 fps
        assert played["t"] > 0.5, played


def test_low_bandwidth_source_draws_lossy_frames(viewer_node) -> None:  # type: ignore[no-untyped-def]
    node, studies = viewer_node
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, node)
        frames: list[bytes] = []

        def keep(response) -> None:  # type: ignore[no-untyped-def]
            if "/dicom-web/lite/" in response.url and "/frames/" in response.url:
                frames.append(response.body())

        page.on("response", keep)
        base = f"http://127.0.0.1:{node.http_port}"
        page.goto(f"{base}/viewer/lite?StudyInstanceUIDs={studies['ct']}")
        page.wait_for_function(f"document.body.innerText.includes('(1/{CT_SLICES})')",
                               timeout=90_000)  # fmt: skip
        canvas = page.wait_for_selector("canvas.cornerstone-canvas")
        assert canvas is not None
        page.wait_for_timeout(1500)
        shot = Image.open(io.BytesIO(canvas.screenshot())).convert("L")
        assert ImageStat.Stat(shot).var[0] > 100, "the viewport is blank"
    assert frames, "no frame came through the low-bandwidth source"
    assert b"transfer-syntax=1.2.840.10008.1.2.4.91" in frames[0][:300]
    assert max(len(f) for f in frames) < 512 * 512 * 2 // 5  # far less than the native frame
