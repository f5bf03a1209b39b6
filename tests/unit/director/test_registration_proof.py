"""The registration token never crosses an unverified connection: the agent sends an HMAC proof over its CSR."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dxflow.agent.director_link import DirectorLink
from dxflow.agent.identity import AgentIdentity
from dxflow.common.ca import ensure_server_cert, load_ca, registration_proof, registration_token_ok
from dxflow.protocol.errors import ApiError

TOKEN = "s3cret-registration-token"


async def _register_against_impostor(tmp_path: Path) -> dict[str, Any]:
    """A director impostor with a certificate the agent cannot verify: record what the agent sends."""
    ca = load_ca(tmp_path / "impostor")
    cert, key = ensure_server_cert(ca, tmp_path / "impostor")
    seen: dict[str, Any] = {}

    async def register(request: web.Request) -> web.Response:
        seen.update(await request.json())
        return web.json_response({"error": "pending approval"}, status=403)

    app = web.Application()
    app.router.add_post("/v1/agent/register", register)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = runner.addresses[0][1]
    link = DirectorLink(f"https://127.0.0.1:{port}", AgentIdentity.load(tmp_path / "agent"), registration_token=TOKEN)
    try:
        with pytest.raises(ApiError):  # pending approval
            await link.register("host1")
    finally:
        await link.close()
        await runner.cleanup()
    return seen


def test_the_agent_sends_a_proof_not_the_token_before_the_ca_is_pinned(tmp_path: Path) -> None:
    body = asyncio.run(_register_against_impostor(tmp_path))
    assert body["hostname"] == "host1"
    assert TOKEN not in json.dumps(body)
    assert body["registrationToken"] == registration_proof(TOKEN, body["csr"])


def test_the_director_accepts_the_token_or_a_proof_over_this_csr() -> None:
    csr = "Q1NSLWJ5dGVz"
    assert registration_token_ok(TOKEN, TOKEN, csr)  # dcvix agents send the token itself
    assert registration_token_ok(TOKEN, registration_proof(TOKEN, csr), csr)
    assert not registration_token_ok(TOKEN, registration_proof(TOKEN, csr), "another CSR")
    assert not registration_token_ok(TOKEN, registration_proof("wrong", csr), csr)
    assert not registration_token_ok(None, TOKEN, csr)
