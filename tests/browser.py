"""Headless Chromium for the web page test and ``docs/web_page.py``, through Playwright.

Playwright drives Debian's ``chromium`` (``executable_path``: no browser download, which
this machine's network would refuse); ``make system-deps`` installs it. CI runs as root,
where Chromium's sandbox cannot start, hence ``--no-sandbox``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

from playwright.sync_api import Page, sync_playwright

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Chromium flags: root in containers, no GPU, small /dev/shm.
ARGS = ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary on ``PATH`` (or ``$CHROMIUM``), or ``None``."""
    explicit = os.environ.get("CHROMIUM")
    if explicit and shutil.which(explicit):
        return shutil.which(explicit)
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@contextlib.contextmanager
def open_page(
    binary: str, *, width: int = 1280, height: int = 900, timeout_s: float = 60
) -> Iterator[Page]:
    """A fresh headless browser with one page of ``width x height`` CSS pixels; every
    Playwright wait on it gives up after ``timeout_s`` seconds."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=list(ARGS))
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(timeout_s * 1000)
            yield page
        finally:
            browser.close()


def evaluate(page: Page, expression: str) -> object:
    """The value of the JavaScript ``expression`` in the page.

    Wrapped in an arrow function, because Playwright takes any string containing ``=>``
    for a function to call.
    """
    return page.evaluate(f"() => ({expression})")


def wait_for(page: Page, expression: str) -> object:
    """Wait until ``expression`` is truthy in the page and return its value."""
    return page.wait_for_function(f"() => ({expression})").json_value()
