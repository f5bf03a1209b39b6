"""Debian's Chromium driven by Playwright, as the browser tests use it (no browser download, no network)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, sync_playwright

from tests import timeouts

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Debian Chromium."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def page_without_errors(browser: Browser, height: int = 720, timeout: float | None = None) -> Iterator[Page]:
    """A page in a fresh context; leaving the block fails if a script on the page raised."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": height})
    if timeout is not None:
        context.set_default_timeout(timeouts.scaled(timeout) * 1000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors
