"""The admin web UI in a real browser: Debian's Chromium (headless) driven by Playwright.

Screenshots go to the test's tmp dir; with DXFLOW_UPDATE_SCREENSHOTS=1 the README ones are refreshed in docs/images.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.harness.browser import chromium, page_without_errors
from tests.harness.director_harness import ADMIN_PASSWORD, Director, password_hash, wait_until
from tests.harness.people_harness import EVIL_TAG, Fleet, pending_agent
from tests.timeouts import scaled

DOCS_IMAGES = Path(__file__).resolve().parents[3] / "docs" / "images"

pytestmark = pytest.mark.xdist_group("people-fleet")  # with --dist loadgroup: one fleet and one browser for these


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with page_without_errors(browser, height=720) as pg:
        yield pg


def shot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("DXFLOW_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMAGES / path.name)
    return path


def log_in(page: Page, director: Director, password: str = ADMIN_PASSWORD, otp: str = "") -> None:
    page.goto(director.url + "/")
    page.fill("input[name=userID]", "admin")
    page.fill("input[name=password]", password)
    if otp:
        page.fill("input[name=otp]", otp)
    page.click("form#login button[type=submit]")


def test_login_refusal_then_success_and_logout(fleet: Fleet, page: Page, tmp_path: Path) -> None:
    log_in(page, fleet.director, "nope")
    expect(page.locator("#login-error")).to_have_text("Wrong user, password or one-time password.")
    shot(page, tmp_path, "ui-login")
    log_in(page, fleet.director)
    expect(page.locator("#user")).to_have_text("admin")
    expect(page.locator("form#login")).to_be_hidden()
    expect(page.locator("#agents")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "dcvix_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read the session
    page.click("#logout")
    expect(page.locator("form#login")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()
    page.reload()
    expect(page.locator("form#login")).to_be_visible()


def test_approve_a_pending_agent_with_state_filter(fleet: Fleet, page: Page, tmp_path: Path) -> None:
    newbie = pending_agent(fleet, tmp_path / "agent", "newbie-ui")
    log_in(page, fleet.director)
    page.select_option("#agent-state", "pending")
    row = page.locator(f"tr[data-guid='{newbie.guid}']")
    expect(row.locator("td").nth(2)).to_have_text("pending")
    expect(page.locator("#agents tbody tr td:nth-child(3)", has_text="registered")).to_have_count(0)
    shot(page, tmp_path, "ui-agents")
    row.get_by_role("button", name="Approve").click()
    expect(row).to_have_count(0)  # no longer pending
    page.select_option("#agent-state", "registered")
    expect(page.locator(f"tr[data-guid='{newbie.guid}'] td").nth(2)).to_have_text("registered")
    states = {a["guid"]: a["state"] for a in fleet.admin().get(f"{fleet.director.url}/v1/admin/agents").json()}
    assert states[newbie.guid] == "registered"
    assert newbie.register(fleet.director).status_code == 200  # the agent gets its certificate now


def test_servers_show_stats_and_escape_tags(fleet: Fleet, page: Page, tmp_path: Path) -> None:
    log_in(page, fleet.director)
    page.click("nav button[data-tab=servers]")
    row = page.locator("#servers tbody tr", has_text="srv1")
    expect(row).to_have_count(1)
    cells = row.locator("td")
    assert int(cells.nth(2).inner_text()) >= 1  # cores
    assert "GiB" in cells.nth(3).inner_text() and "%" in cells.nth(4).inner_text()
    assert cells.nth(5).inner_text().count("/") == 2  # load 1/5/15
    tags = row.locator("span.tag")
    expect(tags).to_have_text(["gpu", EVIL_TAG])  # shown as text
    assert page.evaluate("window.pwned") is None
    assert page.locator("#servers script").count() == 0
    # srv1's agent keeps a tunnel to the hub: the Hub column says so, as the API does.
    listed = {s["hostname"]: s["hub"] for s in fleet.admin().get(f"{fleet.director.url}/v1/servers").json()}
    assert listed["srv1"]["connected"] is True
    expect(page.locator("#servers thead th").last).to_have_text("Hub")
    expect(cells.last).to_have_text("connected")
    expect(cells.last).to_have_attribute("title", re.compile(r"^tunnel up since .* UTC, through this replica$"))
    shot(page, tmp_path, "ui-servers")


def test_close_a_session_after_confirmation(fleet: Fleet, page: Page, tmp_path: Path) -> None:
    admin = fleet.admin()
    d = fleet.director
    for sid in ("ui-keep", "ui-close"):
        r = admin.post(f"{d.url}/v1/sessions", json={"serverId": "srv1", "userId": "bob", "sessionId": sid})
        assert r.status_code == 200, r.text

    def both_reported() -> bool:  # the agent's next update confirms them
        listed = {s["id"]: s for s in admin.get(f"{d.url}/v1/sessions").json()}
        return all(listed.get(sid, {}).get("backend") == "engine" for sid in ("ui-keep", "ui-close"))

    wait_until(both_reported, 20, what="sessions reported by the agent")
    log_in(page, d)
    page.click("nav button[data-tab=sessions]")
    page.fill("#session-filter", "ui-")
    expect(page.locator("#sessions tbody tr")).to_have_count(2)
    page.fill("#session-filter", "ui-close")
    row = page.locator("tr[data-session='ui-close']")
    expect(page.locator("#sessions tbody tr")).to_have_count(1)
    row.get_by_role("button", name="Close").click()
    expect(page.locator("#confirm-text")).to_have_text("Close session ui-close of bob on srv1?")
    shot(page, tmp_path, "ui-sessions-confirm")
    page.get_by_role("button", name="Cancel").click()
    expect(row).to_have_count(1)
    assert "ui-close" in [s["id"] for s in admin.get(f"{d.url}/v1/sessions").json()]
    row.get_by_role("button", name="Close").click()
    page.click("#confirm-ok")
    expect(row).to_have_count(0)
    ids = [s["id"] for s in admin.get(f"{d.url}/v1/sessions").json()]
    assert "ui-close" not in ids and "ui-keep" in ids
    assert admin.delete(f"{d.url}/v1/sessions/ui-keep").ok


def test_auto_refresh_shows_a_new_agent(fleet: Fleet, page: Page, tmp_path: Path) -> None:
    log_in(page, fleet.director)
    page.select_option("#agent-state", "pending")
    assert [o.inner_text() for o in page.locator("#refresh option").all()] == ["off", "5 s", "10 s", "30 s", "60 s"]
    page.select_option("#refresh", "5")
    late = pending_agent(fleet, tmp_path / "late", "late-comer")
    expect(page.locator(f"tr[data-guid='{late.guid}']")).to_have_count(1, timeout=scaled(8000))
    page.reload()
    expect(page.locator("#refresh")).to_have_value("5")  # the choice is remembered


def test_login_with_totp(tmp_path: Path, page: Page) -> None:
    secret = pyotp.random_base32()
    auth = {
        "type": "local",
        "users": {"admin": password_hash(ADMIN_PASSWORD)},
        "otp": {"type": "totp", "totp_secrets": {"admin": secret}},
    }
    director = Director(tmp_path, auth=auth).start()
    try:
        log_in(page, director)  # no one-time password
        expect(page.locator("#login-error")).to_have_text("Wrong user, password or one-time password.")
        log_in(page, director, otp=pyotp.TOTP(secret).now())
        expect(page.locator("#user")).to_have_text("admin")
    finally:
        director.stop()
