"""Edge JWKS: loaded in the background with a minimum interval; an unknown ``kid`` is a 401 at once, without a
fetch in the request path, and the event loop never waits for the key source (issue 14 item 10)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from pathlib import Path

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from dxflow.common.edge import EdgeVerifier, edge_middleware

AUDIENCE = "edge-unit"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _token(kid: str) -> str:
    now = int(time.time())
    return jwt.encode({"aud": AUDIENCE, "iat": now, "exp": now + 600}, KEY, algorithm="RS256", headers={"kid": kid})


class SlowSource(EdgeVerifier):
    """A key source that takes ``delay`` seconds per load (a slow identity provider) and counts the loads."""

    def __init__(self, *args: object, delay: float, **kwargs: object) -> None:
        self.loads, self.delay, self.release = 0, delay, threading.Event()
        super().__init__(*args, **kwargs)

    def _fetch(self) -> None:
        self.loads += 1
        if self.loads > 1:
            self.release.wait(self.delay)  # the provider is slow: this thread waits, the loop must not
        super()._fetch()


@pytest.fixture
def jwks(tmp_path: Path) -> Path:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256"}]}))
    return path


def test_unknown_kid_is_401_without_a_fetch_and_the_loop_stays_free(jwks: Path) -> None:
    verifier = SlowSource(str(jwks), AUDIENCE, delay=30, refresh_every=3600, min_interval=3600)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def main() -> tuple[list[int], float, int, int]:
        app = web.Application(middlewares=[edge_middleware(verifier)])
        app.router.add_get("/", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
        try:
            async with aiohttp.ClientSession() as client:

                async def get(kid: str) -> int:
                    async with client.get(url, headers={"Cf-Access-Jwt-Assertion": _token(kid)}) as resp:
                        return resp.status

                assert await get("k1") == 200  # first request: the background load has run (in a thread)
                started = time.monotonic()
                statuses = await asyncio.gather(*(get(f"rotated-{i}") for i in range(50)), get("k1"))
                elapsed = time.monotonic() - started
                return statuses, elapsed, verifier.loads, (await get("k1"))
        finally:
            verifier.release.set()
            await verifier.stop()
            await runner.cleanup()

    statuses, elapsed, loads, last = asyncio.run(main())
    assert statuses[:-1] == [401] * 50 and statuses[-1] == 200 and last == 200
    assert elapsed < 10, "unknown kids must not wait for the (30 s) key source"
    assert loads <= 2, "50 unknown kids within the minimum interval cause at most one extra load"


def test_a_rotated_key_is_picked_up_by_the_background_refresh(jwks: Path, tmp_path: Path) -> None:
    verifier = EdgeVerifier(str(jwks), AUDIENCE, refresh_every=3600, min_interval=0.05)

    async def main() -> bool:
        try:
            assert await verifier.ready()
            with pytest.raises(KeyError):
                verifier.verify(_token("k2"))
            data = json.loads(jwks.read_text())
            data["keys"].append({**data["keys"][0], "kid": "k2"})
            jwks.write_text(json.dumps(data))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with contextlib.suppress(KeyError):
                    return bool(verifier.verify(_token("k2")))
                await asyncio.sleep(0.05)  # poll the condition with a deadline
            return False
        finally:
            await verifier.stop()

    assert asyncio.run(main())
