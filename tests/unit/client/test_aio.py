"""The async twin against in-process aiohttp servers: the same protocol layer and error mapping as the sync SDK."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from dxflow.client.aio import AgentEndpoint, AsyncAgentClient, AsyncDirectorClient, AsyncEngineClient
from dxflow.client.settings import ConnectionSettings
from dxflow.common.crypto import generate_rsa_key, load_private_key, private_pem
from dxflow.common.files import write_private
from dxflow.director.agent_client import AgentClient
from dxflow.protocol import director_wire as wire
from dxflow.protocol.chunks import encode_body
from dxflow.protocol.errors import ApiError, Conflict, NotFound, PendingApproval, ProtocolError, TransportError


def token(sub: str) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time() + 3600)}, "unchecked-secret-of-32-bytes-min", "HS256")


def chunked(status: int, message: str, *entities: Any) -> web.Response:
    return web.Response(status=status, body=encode_body(status, message, entities), content_type="application/json")


async def serve(routes: web.RouteTableDef, scenario: Callable[[str], Awaitable[None]]) -> None:
    app = web.Application()
    app.add_routes(routes)
    async with TestServer(app, host="127.0.0.1") as server:
        await scenario(str(server.make_url("")).rstrip("/"))


def test_engine_client_logs_in_retries_a_401_and_maps_errors(tmp_path: Path) -> None:
    key_path = tmp_path / "client.key"
    write_private(key_path, private_pem(generate_rsa_key()))
    public = load_private_key(key_path).public_key()
    fresh, logins = token("fresh"), []
    routes = web.RouteTableDef()

    @routes.get("/api/auth/challenge/")
    async def challenge(request: web.Request) -> web.Response:
        return chunked(200, "OK", {"nonce": "n-1", "identity": "id"})

    @routes.post("/api/auth/verify/")
    async def verify(request: web.Request) -> web.Response:
        body = await request.json()
        public.verify(base64.b64decode(body["signature"]), b"n-1", padding.PKCS1v15(), hashes.SHA256())
        logins.append(body["identity"])
        return chunked(200, "OK", {"token": fresh})

    created: list[dict[str, Any]] = []

    @routes.get("/api/shell/")
    async def shells(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {fresh}":
            return chunked(401, "token expired")
        return chunked(200, "OK", {"identity": "work1", "state": "running"})

    @routes.post("/api/shell/")
    async def create(request: web.Request) -> web.Response:
        created.append(await request.json())
        return chunked(409, "shell work1 exists")

    @routes.delete("/api/shell/")
    async def remove(request: web.Request) -> web.Response:
        return chunked(404, f"no shell {request.query['identity']}")

    @routes.get("/api/engine/healthcheck/")
    async def health(request: web.Request) -> web.Response:
        return chunked(200, "OK", {"status": "ok"})

    async def scenario(url: str) -> None:
        settings = ConnectionSettings(
            profile="t", profile_exists=False, address=url, key=str(key_path), token=token("stale"), mode="key"
        )
        client = AsyncEngineClient(settings)
        try:
            assert await client.healthy()
            assert [s["identity"] for s in await client.shells()] == ["work1"]
            assert logins == ["id"], "one login after the 401, then the retry"
            with pytest.raises(Conflict, match="exists"):
                await client.create_shell("work1", env={"A": "1"})
            assert created == [{"identity": "work1", "path": "", "args": [], "env": {"A": "1"}}], "the public body"
            with pytest.raises(NotFound) as info:
                await client.remove_shell("gone")
            assert (info.value.status_code, info.value.url) == (404, "/api/shell/")
        finally:
            await client.close()
        down = AsyncEngineClient(ConnectionSettings(profile="t", profile_exists=False, address=url + "0"))
        assert not await down.healthy()
        await down.close()

    asyncio.run(serve(routes, scenario))


def test_director_client_register_pending_then_issued() -> None:
    routes = web.RouteTableDef()
    seen: list[dict[str, Any]] = []

    @routes.post(wire.REGISTER)
    async def register(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        if "registrationToken" not in body:
            return web.json_response(wire.error_body(wire.PENDING_APPROVAL), status=403)
        return web.json_response({"certificate": "CERT", "ca": "CA", "agentId": body["guid"]})

    @routes.post(wire.UPDATE)
    async def update(request: web.Request) -> web.Response:
        return web.Response(status=200, text="not json")

    async def scenario(url: str) -> None:
        client = AsyncDirectorClient(url, ("unused.crt", "unused.key"))
        try:
            with pytest.raises(PendingApproval):
                await client.register("g-1", "srv1", "Q1NS")
            issued = await client.register("g-1", "srv1", "Q1NS", "tok")
            assert issued == wire.Issued("CERT", "CA", "g-1", None)
            with pytest.raises(ProtocolError):
                await client.update(wire.update_body([], {}, [], {}))
        finally:
            await client.close()
        assert seen[0] == {"guid": "g-1", "hostname": "srv1", "csr": "Q1NS"}
        assert seen[1]["registrationToken"] == "tok"

    asyncio.run(serve(routes, scenario))
    with pytest.raises(TransportError):
        asyncio.run(AsyncDirectorClient("http://127.0.0.1:9", ("a", "b")).health())


class Channel:
    """A stand-in tunnel: answers like an agent would, or fails like a broken tunnel."""

    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body, self.calls = status, body, []  # type: ignore[var-annotated]

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        self.calls.append((method, path, body))
        return self.status, self.body


def test_agent_client_over_a_channel_and_the_directors_wording(tmp_path: Path) -> None:
    async def scenario() -> None:
        ok = Channel(201, {"sessionID": "s-9"})
        client = AsyncAgentClient.__new__(AsyncAgentClient)  # no TLS files needed: every call takes the channel
        agent = AgentEndpoint("10.0.0.1", 8446, "dxflow-agent-g", ok)
        created = await client.create_session(agent, wire.SessionRequest("alice", "console", "s-1"))
        assert created.session_id == "s-9"
        assert ok.calls == [("POST", "/v1/sessions", {"userId": "alice", "sessionType": "console", "sessionId": "s-1"})]

        director = AgentClient.__new__(AgentClient)
        director.client, director.tunnels = client, None
        director._endpoint = lambda server, cn: AgentEndpoint("h", 1, cn, Channel(409, {"error": "session exists"}))  # type: ignore[method-assign]
        server = {"id": "g", "hostname": "srv1"}
        with pytest.raises(ApiError) as info:
            await director.create_session(server, "cn", wire.SessionRequest("alice", "console", "s-1"))
        assert (info.value.status_code, info.value.message) == (409, "agent srv1: session exists")
        director._endpoint = lambda server, cn: AgentEndpoint("h", 1, cn, Channel(500, {"error": "dcv crashed"}))  # type: ignore[method-assign]
        with pytest.raises(ApiError) as info:
            await director.close_session(server, "cn", "s-1")
        assert (info.value.status_code, info.value.message) == (502, "agent srv1: dcv crashed")

    asyncio.run(scenario())


def test_session_request_accepts_dcvix_aliases_and_refuses_missing_fields() -> None:
    parsed = wire.SessionRequest.parse({"userID": "bob", "sessionID": "x1"})
    assert parsed == wire.SessionRequest("bob", "console", "x1")
    with pytest.raises(ApiError, match="userId is required") as info:
        wire.SessionRequest.parse({"sessionId": "x1"})
    assert info.value.status_code == 400
    assert wire.SessionCreated.parse({}, "asked").session_id == "asked"
    with pytest.raises(ApiError, match="tags must be a list of strings"):
        wire.AgentConfigRequest.parse({"tags": "gpu"})
