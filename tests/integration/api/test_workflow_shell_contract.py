"""The public workflow (4.api/008) and shell (4.api/005) groups against a real engine, driven from the docs' pages:
every documented endpoint answers at its documented method and path with the documented query and body fields,
and its entities carry the documented keys (numbers where the docs show numbers). Also: the shell WebSocket's
base64 framing, live logs streamed as 06.streaming.md says, READ_ONLY tokens change nothing, old paths are
deprecated aliases."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from dxflow.client.engine import EngineClient
from dxflow.protocol.chunks import parse_body, parse_stream_line
from tests import timeouts
from tests.conftest import EngineProc
from tests.harness.shell_support import key_with, session_for

DOCS = Path(__file__).resolve().parents[4] / "shared" / "dxflow-docs" / "4.api"  # the public docs, beside the repo

pytestmark = pytest.mark.xdist_group("api-workflow-shell")

COMPOSE = (
    "services:\n"
    "  first:\n    command: [sh, -c, 'echo first-up; sleep 300']\n"
    "  second:\n    command: [sh, -c, 'echo second-up; sleep 300']\n    depends_on: [first]\n"
)


@dataclass
class Endpoint:
    """One documented request."""

    page: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    entity: Any
    read_only_restricted: bool
    streamed: bool
    websocket: bool


def _json_block(text: str, heading: str) -> Any:
    match = re.search(rf"### {heading}\n.*?```json[^\n]*\n(.*?)```", text, re.S)
    return json.loads(match.group(1)) if match else None


def parse_page(path: Path) -> Endpoint:
    """An endpoint from its markdown page: ``### Endpoint``, the query table, the body and response examples."""
    text = path.read_text()
    method, route = re.search(r"### Endpoint\n+```bash\n(\w+) (\S+)\n```", text).groups()
    query: dict[str, str] = {}
    table = re.search(r"### Query Parameters\n+((?:\|.*\n)+)", text)
    for row in table.group(1).splitlines()[2:] if table else []:
        cells = [c.strip() for c in row.strip("|").split("|")]
        query[cells[0]] = cells[1].strip("`")
    response = _json_block(text, "Response") or []
    entity = next((c["payload"] for c in response if c.get("kind") == "entity"), None)
    notes = text.split("### Notes", 1)[-1]
    return Endpoint(
        page=path.stem,
        method=method,
        path=route,
        query=query,
        body=_json_block(text, "Body"),
        entity=entity,
        read_only_restricted="Read-Only Permission Restricted" in notes,
        streamed="Always streamed" in notes or "Streamed" in text.split("### Response", 1)[-1][:40],
        websocket="WebSocket" in notes,
    )


def documented(group: str) -> list[Endpoint]:
    return [parse_page(p) for p in sorted((DOCS / group).glob("*.md")) if not p.stem.endswith("index")]


WORKFLOW = documented("008.workflow")
SHELL = documented("005.shell")


def test_the_docs_tables_are_complete() -> None:
    """Every endpoint of each group's index table has its page (the contract below covers them all)."""
    for group, endpoints in (("008.workflow", WORKFLOW), ("005.shell", SHELL)):
        index = next((DOCS / group).glob("*index.md")).read_text()
        listed = set(re.findall(r"\| `(\w+)` \| `(\S+)` \|", index))
        assert listed == {(e.method, e.path) for e in endpoints}
    assert len(WORKFLOW) == 14 and len(SHELL) == 9


def assert_shape(entity: Any, documented_entity: Any, where: str) -> None:
    """Documented keys present; a documented number is a number (our extra keys are allowed)."""
    if isinstance(documented_entity, dict):
        assert isinstance(entity, dict), f"{where}: {entity!r}"
        for key, example in documented_entity.items():
            assert key in entity, f"{where}: no {key!r} in {entity}"
            if isinstance(example, int | float) and not isinstance(example, bool) and entity[key] is not None:
                assert isinstance(entity[key], int | float), f"{where}: {key} = {entity[key]!r} is not a number"
            if isinstance(example, dict) and example and key != "points":
                assert_shape(entity[key], example, f"{where}.{key}")
    elif isinstance(documented_entity, str):
        assert isinstance(entity, str), f"{where}: {entity!r}"


class Api:
    """Raw HTTP against the engine, as a browser console would call it."""

    def __init__(self, engine: EngineProc, token: str) -> None:
        self.base, self.http = engine.address, requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.base + path, timeout=timeouts.scaled(30), verify=False, **kwargs)

    def first_chunks(
        self, path: str, params: dict[str, str], count: int, on_status: Callable[[], object] = lambda: None
    ) -> tuple[requests.Response, list[dict]]:
        """The first ``count`` chunks of a streamed response, read line by line, then the connection is dropped;
        ``on_status`` runs once the status chunk has arrived (to make something happen)."""
        resp = self.http.get(self.base + path, params=params, stream=True, timeout=timeouts.scaled(30), verify=False)
        chunks: list[dict] = []
        with resp:
            for line in resp.iter_lines():
                chunk = parse_stream_line(line)
                if chunk is not None:
                    chunks.append(chunk)
                    if chunk["kind"] == "status":
                        on_status()
                if len(chunks) >= count or resp.status_code >= 400:
                    break
        return resp, chunks


@pytest.fixture(scope="module")
def api(engine: EngineProc, master: EngineClient) -> Api:
    return Api(engine, master.session.tokens.token())


def entities_of(resp: requests.Response) -> list[Any]:
    assert resp.status_code < 300, f"{resp.request.method} {resp.url}: {resp.status_code} {resp.text}"
    assert resp.text.startswith("[\n{") and resp.text.rstrip().endswith("]"), "one chunk per line"
    body = parse_body(resp.content)
    assert body.code == resp.status_code
    return body.entities


def create_workflow(api: Api, identity: str, start: bool = True) -> None:
    resp = api.call("POST", "/api/workflow/", params={"identity": identity}, data=COMPOSE)
    assert resp.status_code == 201, resp.text
    if start:
        entities_of(api.call("PUT", "/api/workflow/start/", params={"identity": identity}))
        timeouts.wait_until(
            lambda: all(s["status"] == "running" for s in steps(api, identity)), 20, what="both steps running"
        )


def steps(api: Api, identity: str) -> list[dict[str, Any]]:
    return entities_of(api.call("GET", "/api/workflow/steps/", params={"identity": identity}))


def _request(api: Api, ep: Endpoint, identity: str) -> tuple[requests.Response, list[Any]]:
    """Call ``ep`` with its documented fields filled in for ``identity``."""
    params = {k: v for k, v in ep.query.items() if v}
    for key in ("identity", "identities"):
        if key in ep.query:
            params[key] = identity
    if ep.streamed:

        def restart() -> None:  # new events and log lines for the live streams
            for action in ("stop", "start"):
                entities_of(api.call("PUT", f"/api/workflow/{action}/", params={"identity": identity}))

        resp, chunks = api.first_chunks(ep.path, params, 2, restart if "stats" not in ep.path else lambda: None)
        assert resp.headers["Content-Type"].startswith("application/stream+json")
        return resp, [c["payload"] for c in chunks if c["kind"] == "entity"]
    if ep.page.endswith("workflow-create"):
        resp = api.call(ep.method, ep.path, params=params, data=COMPOSE)
    elif ep.body is not None:
        body = dict(ep.body)
        body["identity"] = identity
        if "step" in body:
            body["step"] = 1
        resp = api.call(ep.method, ep.path, params=params, json=body)
    else:
        resp = api.call(ep.method, ep.path, params=params)
    return resp, entities_of(resp)


@pytest.mark.parametrize("ep", WORKFLOW, ids=lambda e: e.page)
def test_workflow_endpoint_as_documented(api: Api, ep: Endpoint) -> None:
    identity = re.sub(r"[^a-z0-9]+", "-", ep.page.split(".", 1)[1])
    create_workflow(api, identity, start="create" not in ep.page)
    resp, entities = _request(api, ep, identity if "create" not in ep.page else identity + "-new")
    assert resp.status_code in (200, 201), resp.text
    if ep.entity is not None and ep.page not in ("113.workflow-prune",):
        assert entities, f"{ep.page}: no entity"
        for entity in entities:
            assert_shape(entity, ep.entity, ep.page)
    if ep.entity is not None and "prune" in ep.page:
        assert {"identity": identity, "error": ""} in entities
    if ep.method == "DELETE":
        listed = [w["identity"] for w in entities_of(api.call("GET", "/api/workflow/"))]
        assert identity not in listed
    else:
        api.call("DELETE", "/api/workflow/", params={"identity": identity})
        api.call("DELETE", "/api/workflow/", params={"identity": identity + "-new"})


def _wait_state(api: Api, identity: str, state: str) -> None:
    timeouts.wait_until(
        lambda: (
            next(s for s in entities_of(api.call("GET", "/api/shell/")) if s["identity"] == identity)["state"] == state
        ),
        10,
        what=f"shell {identity} {state}",
    )


@pytest.mark.parametrize("ep", [e for e in SHELL if not e.websocket], ids=lambda e: e.page)
def test_shell_endpoint_as_documented(api: Api, ep: Endpoint) -> None:
    identity = re.sub(r"[^a-z0-9]+", "-", ep.page.split(".", 1)[1])
    if "create" not in ep.page:
        entities_of(api.call("POST", "/api/shell/", json={"identity": identity, "path": "/bin/sh", "args": []}))
    if "execute" in ep.page:  # execute starts an exited shell again: kill it and wait until it has exited
        api.call("PUT", "/api/shell/kill/", params={"identity": identity})
        _wait_state(api, identity, "exited")
    if "resize" in ep.page:
        ep.query.update(rows="40", columns="120")
    resp, entities = _request(api, ep, identity)
    assert resp.status_code in (200, 201), resp.text
    if ep.entity is not None:
        assert entities, f"{ep.page}: no entity"
        for entity in entities:
            assert_shape(entity, ep.entity, ep.page)
    shells = {s["identity"]: s for s in entities_of(api.call("GET", "/api/shell/"))}
    if ep.method == "DELETE":
        assert identity not in shells
        return
    if "resize" in ep.page:
        assert (shells[identity]["rows"], shells[identity]["columns"]) == (40, 120)
    if "execute" in ep.page:
        assert shells[identity]["state"] == "running"
    if "kill" in ep.page:
        _wait_state(api, identity, "exited")
    api.call("DELETE", "/api/shell/", params={"identity": identity})


def test_workflow_json_and_steps(api: Api, engine: EngineProc) -> None:
    create_workflow(api, "diagram", start=False)
    document = json.loads((engine.data_dir / "volume" / "diagram" / "workflow.json").read_text())
    assert document["identity"] == "diagram"
    assert [(s["index"], s["name"], s["phase"], s["depends_on"]) for s in document["steps"]] == [
        (1, "first", 0, []),
        (2, "second", 1, ["first"]),
    ]
    listed = steps(api, "diagram")
    assert [(s["index"], s["name"], s["status"]) for s in listed] == [(1, "first", "created"), (2, "second", "created")]
    assert listed[0]["stdout_path"] == "diagram/logs/first.log"
    api.call("DELETE", "/api/workflow/", params={"identity": "diagram"})


def test_bad_input_is_documented_status(api: Api) -> None:
    cases = [
        ("GET", "/api/workflow/steps/", {}, 400),
        ("GET", "/api/workflow/steps/", {"identity": "missing"}, 404),
        ("PUT", "/api/workflow/start/", {"identity": "../etc"}, 404),
        ("GET", "/api/workflow/", {"limit": "many"}, 400),
        ("GET", "/api/workflow/logs/", {"identity": "missing"}, 404),
        ("DELETE", "/api/workflow/batch/", {}, 400),
        ("PUT", "/api/shell/resize/", {"identity": "missing", "rows": "2", "columns": "2"}, 404),
        ("PUT", "/api/shell/kill/", {}, 400),
        ("DELETE", "/api/shell/", {"identity": "missing"}, 404),
    ]
    for method, path, params, status in cases:
        resp = api.call(method, path, params=params)
        assert resp.status_code == status, f"{method} {path} {params}: {resp.status_code} {resp.text}"
        assert parse_body(resp.content).message
    assert api.call("POST", "/api/workflow/", data="services: [").status_code == 400
    assert api.call("POST", "/api/workflow/", data="").status_code == 400
    assert api.call("POST", "/api/shell/", json={"args": "ls"}).status_code == 400
    assert api.call("POST", "/api/shell/", json={"identity": "list"}).status_code == 400


def test_shell_websocket_frames_are_base64_text(api: Api, engine: EngineProc, master: EngineClient) -> None:
    entities_of(api.call("POST", "/api/shell/", json={"identity": "ws-public", "path": "/bin/sh", "args": []}))
    token = master.session.tokens.token()

    async def drive() -> tuple[bytes, int, str]:
        url = f"{engine.address.replace('https', 'wss')}/api/shell/ws-public/"
        seen = b""
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(url, ssl=False, params={"authorization": token})
            await ws.send_str("echo hi-$((6*7))\n")
            async with asyncio.timeout(timeouts.scaled(15)):
                while b"hi-42" not in seen:
                    msg = await ws.receive()
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
                    seen += base64.b64decode(msg.data, validate=True)
                await ws.send_str("exit 5\n")
                while True:
                    msg = await ws.receive()
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    seen += base64.b64decode(msg.data, validate=True)
            return seen, msg.data, msg.extra

    seen, code, reason = asyncio.run(drive())
    assert b"hi-42" in seen and (code, reason) == (1000, "exit 5")
    [shell] = [s for s in entities_of(api.call("GET", "/api/shell/")) if s["identity"] == "ws-public"]
    assert (shell["state"], shell["rc"]) == ("exited", 5)
    api.call("DELETE", "/api/shell/", params={"identity": "ws-public"})


def test_live_logs_stream_as_documented(api: Api, tmp_path: Path) -> None:
    trigger = tmp_path / "go"
    compose = (
        "services:\n  ticker:\n    command: [sh, -c, 'echo ready; while :; do if [ -f "
        f"{trigger} ]; then echo tick-$(cat {trigger}); rm -f {trigger}; fi; sleep 0.05; done']\n"
    )
    assert api.call("POST", "/api/workflow/", params={"identity": "live", "start": "true"}, data=compose).ok
    resp = api.http.get(
        api.base + "/api/workflow/logs/live/",
        params={"identity": "live"},
        stream=True,
        timeout=timeouts.scaled(30),
        verify=False,
    )
    with resp:
        assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/stream+json"
        lines = resp.iter_lines()
        assert next(lines) == b"["
        assert json.loads(next(lines)) == {"kind": "status", "payload": {"code": 200, "message": "OK"}}
        trigger.write_text("1")
        while True:
            line = next(lines)
            assert line.startswith(b",{"), line  # one chunk per line, as it happens
            entity = json.loads(line[1:])["payload"]
            assert set(entity) >= {"output", "prefix"}
            if entity["output"] == "tick-1":
                assert entity["prefix"] == "ticker"
                break
    buffered = entities_of(api.call("GET", "/api/workflow/logs/", params={"identity": "live", "count": "-1"}))
    assert [e["output"] for e in buffered][-1] == "tick-1"
    api.call("DELETE", "/api/workflow/", params={"identity": "live"})


def test_read_only_token_changes_nothing(api: Api, engine: EngineProc, master: EngineClient, tmp_path: Path) -> None:
    key = key_with(master, tmp_path, "ro-contract", ["WORKFLOW", "SHELL", "READ_ONLY"])
    reader = Api(engine, session_for(engine, tmp_path / "ro", key).tokens.token())
    create_workflow(api, "guarded")
    entities_of(api.call("POST", "/api/shell/", json={"identity": "guarded-sh", "path": "/bin/sh", "args": []}))

    def state() -> tuple[list, list]:
        workflows = [(w["identity"], w["status"]) for w in entities_of(api.call("GET", "/api/workflow/"))]
        shells = [(s["identity"], s["state"], s["rows"]) for s in entities_of(api.call("GET", "/api/shell/"))]
        return workflows, shells

    before = state()
    for ep in WORKFLOW + SHELL:
        if ep.websocket:
            continue
        if ep.method == "GET":
            if not ep.streamed:
                entities_of(reader.call("GET", ep.path, params={"identity": "guarded"} if ep.query else {}))
            continue
        params = {"identity": "guarded", "identities": "guarded", "rows": "9", "columns": "9"}
        if ep.path.startswith("/api/shell/"):
            params.update(identity="guarded-sh", identities="guarded-sh")
        resp = reader.call(ep.method, ep.path, params=params, data=COMPOSE if ep.method == "POST" else None)
        assert resp.status_code == 403, f"{ep.method} {ep.path}: {resp.status_code}"
        assert "read-only" in parse_body(resp.content).message
    assert state() == before

    async def connect() -> int:
        url = f"{engine.address.replace('https', 'wss')}/api/shell/guarded-sh/"
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(url, ssl=False, headers=dict(reader.http.headers))
            return info.value.status

    assert asyncio.run(connect()) == 403
    api.call("DELETE", "/api/workflow/", params={"identity": "guarded"})
    api.call("DELETE", "/api/shell/", params={"identity": "guarded-sh"})


def test_old_paths_are_deprecated_aliases(api: Api) -> None:
    resp = api.call("POST", "/api/shell/create/", json={"name": "old-sh", "command": ["sleep", "30"]})
    assert resp.status_code == 201 and resp.headers["Deprecation"] == "true"
    assert resp.headers["Link"] == '</api/shell/>; rel="successor-version"'
    resp = api.call("POST", "/api/workflow/deploy/", json={"definition": COMPOSE, "name": "old-wf"})
    assert resp.status_code == 201 and resp.headers["Deprecation"] == "true"
    for method, path in [
        ("GET", "/api/workflow/list/"),
        ("GET", "/api/workflow/old-wf/"),
        ("GET", "/api/workflow/old-wf/logs/"),
        ("POST", "/api/workflow/old-wf/stop/"),
        ("DELETE", "/api/workflow/old-wf/"),
        ("GET", "/api/shell/list/"),
        ("DELETE", "/api/shell/remove/old-sh/"),
    ]:
        resp = api.call(method, path)
        assert resp.status_code == 200 and resp.headers.get("Deprecation") == "true", f"{method} {path}"
    assert "Deprecation" not in api.call("GET", "/api/workflow/").headers
