"""The public auth (4.api/001) and engine (4.api/002) groups against a real engine, driven from the docs' pages:
every documented request answers at its method and path with the documented query and body fields, needs a token
where the page has an Auth section and MASTER where its notes say so, never lets a READ_ONLY token change anything,
and its entities carry the documented keys with the documented JSON types. Proxy and bridge (003, 004) answer 501
at every path of their index tables (platform: test_platform_contract.py). Old paths are deprecated aliases;
``engine.key`` is PKCS#1."""

from __future__ import annotations

import base64
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from dxflow.common.crypto import generate_rsa_key, load_private_key, public_pem, sign_nonce
from dxflow.protocol.chunks import parse_body
from tests import timeouts
from tests.conftest import EngineProc, start_engine
from tests.harness.api_docs import DocEndpoint, conforms, group_pages, index_routes, parse_endpoint
from tests.harness.shell_support import key_with, session_for

pytestmark = pytest.mark.xdist_group("api-engine-auth")

PAGES = [parse_endpoint(p) for group in ("001.auth", "002.engine") for p in group_pages(group)]
WRITES = {"POST", "PUT", "DELETE", "PATCH"}


def call(engine: EngineProc, method: str, path: str, token: str | None = None, **kw: Any) -> tuple[int, Any, Any]:
    """(HTTP status, parsed chunked body, headers); the status chunk must repeat the HTTP status."""
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = requests.request(
        method, engine.address + path, headers=headers, verify=False, timeout=timeouts.scaled(30), **kw
    )
    body = parse_body(resp.content)
    assert body.code == resp.status_code, f"{method} {path}: status chunk {body.code} vs HTTP {resp.status_code}"
    return resp.status_code, body, resp.headers


def login(engine: EngineProc, key_path: Path, lifetime: str | None = None) -> dict[str, Any]:
    """The documented flow: challenge, then verify with the signed nonce."""
    _, challenge, _ = call(engine, "GET", "/api/auth/challenge/")
    entity = challenge.entities[0]
    signature = base64.b64encode(sign_nonce(load_private_key(key_path), entity["nonce"])).decode()
    body = {"identity": entity["identity"], "signature": signature} | ({"lifetime": lifetime} if lifetime else {})
    status, verified, _ = call(engine, "POST", "/api/auth/verify/", json=body)
    assert status == 200
    return verified.entities[0]


@pytest.fixture(scope="module")
def tokens(engine: EngineProc, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """MASTER (the engine key), READ_ONLY and WORKFLOW tokens."""
    home = tmp_path_factory.mktemp("contract")
    from dxflow.client.engine import EngineClient

    master = EngineClient(session_for(engine, home / "m"))
    reader = key_with(master, home, "contract-reader", ["READ_ONLY"])
    worker = key_with(master, home, "contract-worker", ["WORKFLOW"])
    return {
        "master": login(engine, engine.key)["token"],
        "reader": login(engine, reader)["token"],
        "worker": login(engine, worker)["token"],
    }


def _query(page: DocEndpoint, engine: EngineProc, token: str) -> dict[str, str]:
    """A valid value for each documented query field (the smallest that keeps the test quick)."""
    now = dt.datetime.now(dt.UTC)
    values = {"count": "1", "interval": "1000", "duration": "5", "all": "true"}
    values |= {"year": str(now.year), "month": str(now.month), "day": str(now.day), "hour": str(now.hour)}
    if page.method == "DELETE" and page.path == "/api/engine/key/":
        pem = public_pem(generate_rsa_key()).decode()
        body = {"identity": "contract-gone", "key": pem, "permissions": ["READ_ONLY"]}
        assert call(engine, "POST", "/api/engine/key/", token, json=body)[0] == 201
        values["identity"] = "contract-gone"
    return {k: values[k] for k in page.query if k in values}


def _body(page: DocEndpoint) -> Any:
    if page.body is None:
        return None
    assert page.path == "/api/engine/key/", f"no body sample for {page.path}"
    fields = {"identity": f"contract-{time.monotonic_ns()}", "key": public_pem(generate_rsa_key()).decode()}
    fields["permissions"] = ["READ_ONLY"]
    assert set(fields) == set(page.body), "the documented body fields changed"
    return fields


@pytest.mark.parametrize("page", [p for p in PAGES if p.page != "014.engine-restart"], ids=lambda p: p.page)
def test_documented_request(page: DocEndpoint, engine: EngineProc, tokens: dict[str, str]) -> None:
    if page.path == "/api/auth/verify/":
        entity = login(engine, engine.key)
        assert not conforms(page.entity, entity), conforms(page.entity, entity)
        return
    if page.needs_token:
        assert call(engine, page.method, page.path)[0] == 401, "no token must be refused"
    if page.master:
        assert call(engine, page.method, page.path, tokens["worker"])[0] == 403, "MASTER is required"
    if page.method in WRITES and page.needs_token:
        assert call(engine, page.method, page.path, tokens["reader"], json=_body(page))[0] == 403, "READ_ONLY"
    token = tokens["master"] if page.needs_token else None
    status, body, _ = call(
        engine, page.method, page.path, token, params=_query(page, engine, token or ""), json=_body(page)
    )
    assert 200 <= status < 300, body.message
    if page.entity is not None:
        assert body.entities, f"{page.path} returned no entity"
        for entity in body.entities[:10]:
            # Several examples (stat live: a memory and a cpu sample): ours conforms to one of them, or, for a
            # kind the page shows no example of (gpu, disk, network), has the same top-level keys and types.
            errors = [conforms(example, entity) for example in page.entities]
            if all(errors) and isinstance(page.entity, dict) and "points" in page.entity:
                errors.append(conforms(page.entity | {"points": {}}, entity | {"points": {}}))
            assert not all(errors), errors


def test_every_documented_path_is_served(engine: EngineProc) -> None:
    """The index tables of 001 and 002 and the request pages agree with what the engine serves."""
    documented = {(m, p) for group in ("001.auth", "002.engine") for m, p in index_routes(group)}
    assert documented == {(p.method, p.path) for p in PAGES}
    spec = requests.get(engine.address + "/api/openapi.json", verify=False, timeout=timeouts.scaled(30)).json()
    served = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert documented <= served, documented - served
    for page in PAGES:
        declared = {q["name"] for q in spec["paths"][page.path][page.method.lower()].get("parameters", [])}
        assert set(page.query) <= declared, (page.path, set(page.query) - declared)


@pytest.mark.parametrize("group", ["003.proxy", "004.bridge"])
def test_groups_out_of_scope_answer_501(group: str, engine: EngineProc) -> None:
    routes = index_routes(group)
    assert routes
    for method, path in routes:
        status, body, _ = call(engine, method, path.replace("{identity}", "x"))
        assert status == 501, (method, path)
        assert "not implemented by this engine" in body.message


def test_ping_streams_server_time_and_clamps(engine: EngineProc, tokens: dict[str, str]) -> None:
    before = time.time() * 1000
    resp = requests.get(
        engine.address + "/api/engine/ping/",
        params={"count": 2, "interval": 1, "stream": "true"},
        headers={"Authorization": f"Bearer {tokens['reader']}"},
        verify=False,
        stream=True,
        timeout=timeouts.scaled(30),
    )
    lines = [line for line in resp.iter_lines() if line]
    values = parse_body(b"\n".join(lines)).entities
    assert lines[0] == b"[" and lines[-1] == b"]" and len(values) == 2
    assert all(isinstance(v, int) and v >= before - 5000 for v in values)
    assert values[1] - values[0] >= 900, "interval is clamped to at least 1000 ms"
    status, body, _ = call(engine, "GET", "/api/engine/ping/", tokens["reader"], params={"count": "x"})
    assert status == 400 and "count" in body.message


def test_key_register_list_unregister_by_key(engine: EngineProc, tokens: dict[str, str]) -> None:
    pem = public_pem(generate_rsa_key()).decode()
    body = {"identity": "contract-bykey", "key": pem, "permissions": ["SHELL"]}
    status, registered, _ = call(engine, "POST", "/api/engine/key/", tokens["master"], json=body)
    assert status == 201 and registered.entities == [{"identity": "contract-bykey", "permissions": ["SHELL"]}]
    listed = call(engine, "GET", "/api/engine/key/", tokens["master"])[1].entities
    assert any(k["identity"] == "contract-bykey" and k["value"].strip() == pem.strip() for k in listed)
    assert call(engine, "DELETE", "/api/engine/key/", tokens["master"], params={"key": pem})[0] == 200
    assert call(engine, "DELETE", "/api/engine/key/", tokens["master"], params={"key": pem})[0] == 404
    assert call(engine, "DELETE", "/api/engine/key/", tokens["master"])[0] == 400
    bad = call(engine, "POST", "/api/engine/key/", tokens["master"], json=body | {"permissions": ["ROOT"]})
    assert bad[0] == 400 and "ROOT" in bad[1].message


def test_verify_lifetime_falls_back_and_expires_at_is_epoch(engine: EngineProc) -> None:
    now = time.time()
    for lifetime, seconds in (("10m", 600), ("100h", 3600), (None, 3600)):
        expires = login(engine, engine.key, lifetime)["expires_at"]
        assert isinstance(expires, int) and abs(expires - now - seconds) < 120, (lifetime, expires - now)


def test_old_paths_are_deprecated_aliases(engine: EngineProc, tokens: dict[str, str]) -> None:
    status, _, headers = call(engine, "GET", "/api/key/list/", tokens["master"])
    assert status == 200 and headers["Deprecation"] == "true" and "</api/engine/key/>" in headers["Link"]
    status, _, headers = call(engine, "GET", "/api/engine/stat/cpu/", tokens["reader"])
    assert status == 200 and "</api/engine/stat/last/cpu/>" in headers["Link"]
    status, _, headers = call(engine, "POST", "/api/shell/exec/", tokens["master"], json={"argv": ["true"]})
    assert status == 200 and "</api/x/exec/>" in headers["Link"]


def test_info_lists_our_extensions_and_the_volume(engine: EngineProc, tokens: dict[str, str]) -> None:
    info = call(engine, "GET", "/api/engine/info/", tokens["reader"])[1].entities[0]
    assert {"exec", "upload", "download"} <= set(info["capabilities"]) and info["extensions"] == "/api/x/"
    parameter = call(engine, "GET", "/api/engine/parameter/", tokens["reader"])[1].entities[0]
    assert parameter["volume"] == str(engine.data_dir / "volume") == info["volume"]
    assert {"auth", "engine", "shell", "workflow"} <= set(parameter["controllers"])
    assert "platform" in parameter["controllers"]
    assert not {"proxy", "bridge", "x"} & set(parameter["controllers"])
    assert engine.key.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")


def test_restart_keeps_the_address(tmp_path: Path) -> None:
    eng = start_engine(tmp_path / "data", "--volume", str(tmp_path / "vol"))
    try:
        token = login(eng, eng.key)["token"]
        assert call(eng, "GET", "/api/engine/parameter/", token)[1].entities[0]["volume"] == str(tmp_path / "vol")
        status, body, _ = call(eng, "PUT", "/api/engine/restart/", token)
        assert status == 200 and isinstance(body.entities[0], str)
        deadline = timeouts.deadline(30)
        while "engine restarting" not in eng.log():
            assert time.monotonic() < deadline, "the engine did not restart"
            time.sleep(0.05)
        while True:
            try:
                if call(eng, "GET", "/api/engine/ping/", token, params={"count": 1})[0] == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the engine did not come back at the same address"
            time.sleep(0.05)
        assert eng.proc.poll() is None, "restarted in place, same process"
    finally:
        eng.stop()
