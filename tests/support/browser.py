"""Headless Chromium for the board tests and the screenshot scripts.

The browser is Debian's ``chromium`` package (``/usr/bin/chromium``), driven by Playwright's
Python package through its sync API; Playwright's own browser download (``playwright install``)
is never used. The flags keep Chromium off the network: no background requests, no component
updates, no sync, no first-run work — a test machine may have no route to the internet, and a
browser that retries blocked connections is slow to start.

``VK_TEST_CHROMIUM`` names another executable (a developer's Chrome, say).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

__all__ = ["CHROMIUM_FLAGS", "MISSING_CHROMIUM", "chromium_path", "launch_chromium"]

DEFAULT_EXECUTABLE = "/usr/bin/chromium"

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
)

MISSING_CHROMIUM = (
    "the board tests need Debian's Chromium at /usr/bin/chromium: run "
    "`sudo apt-get install chromium` (or set VK_TEST_CHROMIUM to a Chromium executable)"
)


def chromium_path() -> Path | None:
    """The Chromium executable to drive, or None when this machine has none."""
    named = os.environ.get("VK_TEST_CHROMIUM", DEFAULT_EXECUTABLE)
    found = shutil.which(named)
    return Path(found) if found else None


def launch_chromium(playwright: Playwright) -> Browser:
    """A headless Chromium from this machine's package (raises with the install instruction
    when it is missing)."""
    path = chromium_path()
    if path is None:
        raise RuntimeError(MISSING_CHROMIUM)
    return playwright.chromium.launch(
        executable_path=str(path), headless=True, args=list(CHROMIUM_FLAGS)
    )
