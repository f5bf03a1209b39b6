"""The ``authorization`` cookie works only same-origin (issue 14 item 2): a page on another site cannot make the
browser run a command or attach to a shell with it, and JSON endpoints take JSON only."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp
import pytest
import requests

from dxflow.protocol.chunks import parse_body
from tests.conftest import EngineProc
from tests.timeouts import scaled

pytestmark = pytest.mark.xdist_group("security-cookie")
EXEC = "/api/shell/exec/"


def _cookie_post(engine: EngineProc, token: str, headers: dict[str, str], body: bytes) -> requests.Response:
    return requests.post(
        engine.address + EXEC,
        data=body,
        headers={"Cookie": f"authorization={token}", **headers},
        verify=False,
        timeout=scaled(30),
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Content-Type": "text/plain"},
        {"Origin": "https://evil.example", "Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "application/json"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
    ],
    ids=["foreign-text", "foreign-json", "null", "sec-fetch-cross-site"],
)
def test_cross_site_cookie_requests_are_refused(
    engine: EngineProc, token: str, tmp_path, headers: dict[str, str]
) -> None:
    marker = tmp_path / "ran"
    resp = _cookie_post(engine, token, headers, f'{{"argv": ["touch", "{marker}"]}}'.encode())
    assert resp.status_code == 403, resp.text
    assert "refused" in parse_body(resp.content).message
    assert not marker.exists()


def test_same_origin_cookie_request_runs(engine: EngineProc, token: str, tmp_path) -> None:
    marker = tmp_path / "ran"
    origin = engine.address
    headers = {"Origin": origin, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
    resp = _cookie_post(engine, token, headers, f'{{"argv": ["touch", "{marker}"]}}'.encode())
    assert resp.status_code == 200 and marker.exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_json_endpoints_need_a_json_content_type(
    engine: EngineProc, http: requests.Session, tmp_path, content_type: str
) -> None:
    marker = tmp_path / "ran"
    resp = http.post(
        engine.address + EXEC,
        data=f'{{"argv": ["touch", "{marker}"]}}',
        headers={"Content-Type": content_type},
        timeout=scaled(30),
    )
    assert resp.status_code == 415 and "application/json" in parse_body(resp.content).message
    assert not marker.exists()


def test_cross_site_websocket_attach_is_refused(engine: EngineProc, http: requests.Session, token: str) -> None:
    created = http.post(engine.address + "/api/shell/create/", json={"command": ["/bin/sh"]}, timeout=scaled(30))
    assert created.status_code in (200, 201), created.text
    name = parse_body(created.content).entities[0]["name"]
    host = urlsplit(engine.address).netloc
    url = engine.address.replace("https://", "wss://") + f"/api/shell/attach/{name}/"

    async def attach(origin: str) -> int:
        async with aiohttp.ClientSession(cookies={"authorization": token}) as client:
            try:
                ws = await client.ws_connect(url, ssl=False, origin=origin)
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status
            await ws.close()
            return 101

    assert asyncio.run(attach("https://evil.example")) == 403
    assert asyncio.run(attach(f"https://{host}")) == 101
    http.post(engine.address + f"/api/shell/kill/{name}/", json={"signal": "KILL"}, timeout=scaled(30))
