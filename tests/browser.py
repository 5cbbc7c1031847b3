"""Real Chromium (Debian ``chromium``) driven by Playwright, for the viewer and web pages."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def chromium() -> Iterator[Browser]:
    executable = shutil.which("chromium", path="/usr/bin:/usr/local/bin")
    if executable is None:
        pytest.fail("chromium not installed: run `make test` (it installs Debian chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()
