"""``POST /api/workflow/?source=URL`` against a real HTTP server on 127.0.0.1: refused by an engine with the default
config (no request reaches the server), fetched once the engine config allow-lists 127.0.0.1; a redirect to the
cloud metadata address, an oversized body and a loopback address that is not listed are still refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from dxflow.client import WorkflowClient
from dxflow.protocol.chunks import parse_body
from tests.conftest import EngineProc, start_engine
from tests.integration.workflow.conftest import client_for
from tests.timeouts import scaled

pytestmark = [
    pytest.mark.xdist_group("workflow-engine"),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

DEFINITION = b"name: fetched\nservices:\n  hello:\n    command: [sh, -c, 'echo fetched; sleep 300']\n"


class Source(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        body = DEFINITION if self.path == "/wf.yml" else b"x" * 4096
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def source() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 and the paths it was asked for."""
    hits: list[str] = []
    handler = type("Handler", (Source,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()
    thread.join()


def create(engine: EngineProc, wf: WorkflowClient, url: str) -> tuple[int, str]:
    resp = requests.post(
        engine.address + "/api/workflow/",
        params={"source": url},
        headers={"Authorization": f"Bearer {wf.session.tokens.token()}"},
        verify=False,
        timeout=scaled(60),
    )
    return resp.status_code, parse_body(resp.content).message


def test_source_is_refused_by_default(engine: EngineProc, wf: WorkflowClient, source: tuple[str, list[str]]) -> None:
    address, hits = source
    status, message = create(engine, wf, f"http://{address}/wf.yml")
    assert status == 403 and "disabled on this engine" in message
    status, message = create(engine, wf, "https://169.254.169.254/latest/meta-data/")
    assert status == 403
    assert hits == [], "the engine made no request"
    assert "fetched" not in {w["identity"] for w in wf.list()}


def test_source_allowed_by_the_engine_config(tmp_path: Path, source: tuple[str, list[str]]) -> None:
    address, hits = source
    config = tmp_path / "engine.yml"
    config.write_text(
        "workflow_sources:\n  enabled: true\n  allow: [127.0.0.1]\n  schemes: [http]\n  max_bytes: 1024\n"
    )
    engine = start_engine(tmp_path / "data", "--config", str(config))
    wf = client_for(engine, tmp_path / "home")
    try:
        status, message = create(engine, wf, f"http://{address}/wf.yml")
        assert (status, message) == (201, "Created")
        assert hits == ["/wf.yml"]
        assert "fetched" in {w["identity"] for w in wf.list()}
        assert [s["name"] for s in wf.get("fetched")["services"]] == ["hello"]

        status, message = create(engine, wf, f"http://{address}/redirect")
        assert status == 400 and "redirect (HTTP 302 to http://169.254.169.254" in message
        status, message = create(engine, wf, f"http://{address}/big")
        assert status == 413 and "larger than 1024" in message
        assert hits == ["/wf.yml", "/redirect", "/big"], "the redirect was not followed"

        port = address.rsplit(":", 1)[1]
        status, message = create(engine, wf, f"http://127.0.0.2:{port}/wf.yml")
        assert status == 403 and "allow-list" in message, "127.0.0.2 is loopback too, but not listed"
        status, message = create(engine, wf, f"https://{address}/wf.yml")
        assert status == 403 and "scheme 'https' is not allowed" in message
        assert len(hits) == 3
        wf.remove("fetched")
    finally:
        wf.session.close()
        engine.stop()
