"""The light phone viewer /m (MOB-1) in real Chromium at a phone's size."""

from __future__ import annotations

from pathlib import Path

from tests.browser import chromium
from tests.conftest import storescu
from tests.nodeproc import NodeProcess
from tools import gendata

PHONE = {"width": 412, "height": 915}


def test_phone_page_lists_searches_and_scrolls_a_series(node: NodeProcess, tmp_path: Path) -> None:
    storescu(node, *gendata.ct_series(tmp_path / "ct", count=4))
    storescu(node, *gendata.vietnamese_patient(tmp_path / "vn"))
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        page.goto(f"http://127.0.0.1:{node.http_port}/m")
        page.wait_for_selector("#studies li")
        assert page.locator("#studies li").count() == 2
        assert page.get_attribute("html", "lang") == "vi"

        page.fill("#q", "nguyen")  # accent-folded search finds the Vietnamese name
        page.click("button[data-i18n=find]")
        page.wait_for_function("document.querySelectorAll('#studies li').length === 1")
        assert "Nguyễn Thị Hồng Nhung" in page.inner_text("#studies li")

        page.fill("#q", "")
        page.click("button[data-i18n=find]")
        page.click("#studies li >> text=TEST CT")
        _wait_for_image(page)
        assert page.inner_text("#position") == "1 / 4"
        first = page.get_attribute("#image", "src")
        page.keyboard.press("ArrowDown")
        _wait_for_image(page)
        assert page.inner_text("#position") == "2 / 4"
        assert page.get_attribute("#image", "src") != first

        page.check("#lowbw")  # low bandwidth: a small lossy preview, then the full image
        page.click("#presets button >> nth=1")  # soft-tissue window
        _wait_for_image(page)
        src = page.get_attribute("#image", "src") or ""
        assert "window=40%2C400" in src and "viewport=412" in src


def test_phone_page_switches_to_english(node: NodeProcess) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        page.goto(f"http://127.0.0.1:{node.http_port}/m")
        page.click("#lang")
        assert page.get_attribute("html", "lang") == "en"
        assert page.inner_text("button[data-i18n=find]") == "Find"


def _wait_for_image(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "(() => { const i = document.getElementById('image');"
        " return i.complete && i.naturalWidth > 0 && !i.src.includes('quality=40'); })()"
    )
