"""A minimal browser console written against the public dxflow API only (docs/examples/console), served by the
engine with ``boot up --ui-dir`` (same origin), driven in Debian Chromium: sign-in with the engine's PKCS#1 key in
the browser (WebCrypto), a workflow created from YAML, started, its live logs read; a shell over the WebSocket with
a command typed; an artifact uploaded and downloaded. Assertions are what the user sees on the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from dxflow.common.crypto import generate_rsa_key, private_pem
from tests.conftest import EngineProc, start_engine
from tests.harness.browser import chromium, page_without_errors
from tests.timeouts import scaled

CONSOLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "console"
WORKFLOW = "services:\n  hello:\n    command: [sh, -c, 'echo hello-from-the-browser; sleep 300']\n"

pytestmark = pytest.mark.xdist_group("browser-console")  # Debian's chromium: installed by tools/bootstrap.sh


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProc]:
    eng = start_engine(tmp_path_factory.mktemp("engine") / "data", "--ui-dir", str(CONSOLE))
    yield eng
    eng.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with page_without_errors(browser, height=900, timeout=scaled(20)) as pg:
        yield pg


def sign_in(page: Page, engine: EngineProc) -> None:
    pem = engine.key.read_text()
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----")  # PKCS#1, what browser clients read
    page.goto(engine.address + "/")
    page.get_by_label("Private key (PEM)").fill(pem)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("status")).to_contain_text("signed in (MASTER")


def test_a_wrong_key_is_refused_on_the_page(engine: EngineProc, page: Page, tmp_path: Path) -> None:
    page.goto(engine.address + "/some/client/route")  # unknown non-API path: the console (index.html)
    page.get_by_label("Private key (PEM)").fill(private_pem(generate_rsa_key()).decode())
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("status")).to_contain_text("401")


def test_workflow_from_yaml_started_with_live_logs(engine: EngineProc, page: Page) -> None:
    sign_in(page, engine)
    page.get_by_label("Name").first.fill("browser-flow")
    page.get_by_label("Compose YAML").fill(WORKFLOW)
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#workflow-list")).to_contain_text("browser-flow")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("status")).to_contain_text("workflow browser-flow started")
    page.get_by_role("button", name="Live logs").click()
    expect(page.get_by_label("logs")).to_contain_text("hello| hello-from-the-browser")
    page.locator("#workflows").get_by_role("button", name="Refresh").click()
    expect(page.locator("#workflow-list")).to_contain_text("browser-flow: running")


def test_shell_over_the_websocket(engine: EngineProc, page: Page) -> None:
    sign_in(page, engine)
    page.get_by_role("button", name="Open shell").click()
    expect(page.get_by_role("status")).to_contain_text("open")
    page.get_by_label("command").fill("echo answer=$((6*7))")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_label("terminal")).to_contain_text("answer=42")


def test_artifact_upload_and_download(engine: EngineProc, page: Page, tmp_path: Path) -> None:
    sign_in(page, engine)
    local = tmp_path / "note.txt"
    local.write_text("written in the browser test\n")
    page.get_by_label("file").set_input_files(str(local))
    page.locator("#artifact-name").fill("browser-note.txt")
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_contain_text("uploaded browser-note.txt (28 bytes)")
    expect(page.locator("#artifact-list")).to_contain_text("browser-note.txt (28 bytes)")
    assert (engine.data_dir / "volume" / "browser-note.txt").read_text() == "written in the browser test\n"
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    expect(page.get_by_label("downloaded content")).to_have_text("written in the browser test\n")
    saved = tmp_path / "saved.txt"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "browser-note.txt"
    assert saved.read_text() == "written in the browser test\n"
