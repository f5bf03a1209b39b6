"""Debian's Chromium driven by Playwright, as the browser tests use it (no browser download, no network)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests import timeouts

EXPECT_TIMEOUT = 10.0
"""Seconds, before scaling, that a Playwright ``expect`` waits (Playwright's own default is a fixed 5 s)."""
ACTION_TIMEOUT = 30.0
"""Seconds, before scaling, that a page action (click, goto, fill) waits."""

# Every ``expect`` in the process (the browser tests import this module) waits in proportion to the machine's load.
expect.set_options(timeout=timeouts.scaled(EXPECT_TIMEOUT) * 1000)

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


def new_context(browser: Browser, timeout: float = ACTION_TIMEOUT, **kwargs: object) -> BrowserContext:
    """A fresh context (TLS errors ignored: loopback daemons with test certificates) whose actions wait
    ``scaled(timeout)``."""
    context = browser.new_context(ignore_https_errors=True, **kwargs)  # type: ignore[arg-type]
    context.set_default_timeout(timeouts.scaled(timeout) * 1000)
    return context


@contextmanager
def page_without_errors(browser: Browser, height: int = 720, timeout: float = ACTION_TIMEOUT) -> Iterator[Page]:
    """A page in a fresh context; leaving the block fails if a script on the page raised."""
    context = new_context(browser, timeout, viewport={"width": 1280, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors
