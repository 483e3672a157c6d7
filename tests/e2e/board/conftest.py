"""Headless Chromium (Debian's package, driven by Playwright's sync API) for the board tests.

``browser`` is one Chromium per module; ``page`` is a fresh browser context (no cookies, a
1280x800 window) per test. A machine without Chromium fails these tests with the one-line
install instruction: they never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from support.browser import MISSING_CHROMIUM, chromium_path, launch_chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Playwright's waits, in ms: generous for a loaded 2-core machine, well under the test timeout.
WAIT_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if chromium_path() is None:
        pytest.fail(MISSING_CHROMIUM, pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()
