"""Edge (identity-aware proxy) support shared by the engine and the director (DESIGN §2, seed 002).

When ``edge_jwks`` is configured, every request must carry the proxy's JWT (``Cf-Access-Jwt-Assertion`` header or
``CF_Authorization`` cookie), verified for signature (a key of the JWKS, by ``kid``), audience, expiry and, when
set, issuer — before any other handling. ``/auth/connect`` is the relay page of the CLI's browser login: it hands
the caller's edge token to the CLI's localhost callback after the person compares a confirmation code.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from dxflow.protocol.names import EDGE_COOKIE, EDGE_HEADER
from dxflow.server.responses import json_error

__all__ = ["EDGE_COOKIE", "EDGE_HEADER", "EdgeVerifier", "connect_page", "edge_middleware", "edge_token"]

log = logging.getLogger(__name__)
ALGORITHMS = ["RS256", "ES256", "EdDSA"]
CODE = re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _refuse(message: str) -> web.Response:
    resp = json_error(401, message)
    resp.headers["x-error-message"] = message  # the engine's clients read errors from this header
    return resp


def edge_token(request: web.Request) -> str | None:
    return request.headers.get(EDGE_HEADER) or request.cookies.get(EDGE_COOKIE)


class EdgeVerifier:
    """Checks edge JWTs against a JWKS from a file or an ``https://`` URL, kept fresh by a background task.

    The keys are (re)loaded in a worker thread, never on the event loop: every ``refresh_every`` seconds, and
    sooner when a token names an unknown ``kid`` (a rotation), but never twice within ``min_interval``. A token
    whose ``kid`` is not (yet) known is refused at once, without a fetch in the request path.
    """

    def __init__(
        self,
        jwks: str,
        audience: str,
        issuer: str | None = None,
        *,
        refresh_every: float | None = None,
        min_interval: float | None = None,
    ) -> None:
        if not audience:
            raise ValueError("edge_audience is required with edge_jwks")
        self.audience, self.issuer = audience, issuer
        self._source = jwks
        self._remote = jwks.startswith("https://")
        self.refresh_every = refresh_every if refresh_every is not None else (300.0 if self._remote else 5.0)
        self.min_interval = min_interval if min_interval is not None else (30.0 if self._remote else 1.0)
        self._keys: dict[str, Any] = {}
        self._mtime = 0.0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._loaded = asyncio.Event()
        if not self._remote:
            self._fetch()  # at construction (startup), so a bad file fails the start

    def _fetch(self) -> None:
        """Load the key set (blocking: call in a worker thread once running)."""
        if self._remote:
            keys = jwt.PyJWKClient(self._source, cache_jwk_set=False, cache_keys=False, timeout=10).get_jwk_set()
        else:
            path = Path(self._source)
            mtime = path.stat().st_mtime
            if self._keys and mtime == self._mtime:
                return
            keys, self._mtime = jwt.PyJWKSet.from_json(path.read_text()), mtime
        self._keys = {str(k.key_id): k.key for k in keys.keys}

    async def _refresher(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await asyncio.to_thread(self._fetch)
            except Exception as exc:  # keep the keys we have; try again later
                log.warning("edge JWKS %s could not be loaded: %s", self._source, exc)
            self._loaded.set()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.refresh_every)
            await asyncio.sleep(max(0.0, started + self.min_interval - loop.time()))  # rate limit, not a sync

    def start(self) -> None:
        """Start the background refresher (on the running loop) if it is not running."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._refresher(), name="edge-jwks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def ready(self, timeout: float = 10.0) -> bool:
        """Start the refresher and wait (up to ``timeout``) for the first key set."""
        self.start()
        if not self._loaded.is_set() and not self._keys:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._loaded.wait(), timeout)
        return bool(self._keys)

    def _key(self, token: str) -> Any:
        kid = jwt.get_unverified_header(token).get("kid")
        keys = self._keys
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        key = keys.get(str(kid))
        if key is None:
            self._wake.set()  # perhaps a rotation: the refresher looks again (within its minimum interval)
            raise KeyError(f"unknown key id {kid!r}")
        return key

    def verify(self, token: str) -> dict[str, Any]:
        """The verified claims from the keys at hand (no I/O); ``jwt.PyJWTError`` or KeyError (unknown ``kid``)."""
        return jwt.decode(
            token,
            self._key(token),
            algorithms=ALGORITHMS,
            audience=self.audience,
            issuer=self.issuer,
            options={"require": ["exp", "aud"]},
            leeway=30,
        )


def edge_middleware(verifier: EdgeVerifier) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Refuse (401) any request without a valid edge JWT; the claims go to ``request["edge"]``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = edge_token(request)
        if not token:
            return _refuse("edge authentication required")
        if not await verifier.ready():
            return _refuse("edge keys are not available yet; retry shortly")
        try:
            request["edge"] = verifier.verify(token)
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            log.warning("edge token refused from %s: %s", request.remote, exc)
            return _refuse("invalid edge token")
        return await handler(request)

    return middleware


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Connect the dxflow CLI</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto">
<h1>Connect the dxflow CLI</h1>
<p>Check that your terminal shows this confirmation code:</p>
<p id="code" style="font-size: 2rem; font-family: monospace">{code}</p>
<form method="post" action="http://127.0.0.1:{port}/callback">
<input type="hidden" name="token" value="{token}">
<input type="hidden" name="code" value="{code}">
<button type="submit" id="connect">Yes, connect the CLI</button>
</form>
<p>If the code differs, close this page.</p>
</body></html>
"""


async def connect_page(request: web.Request) -> web.Response:
    """``GET /auth/connect?port=P&code=XXXX-XXXX``: the relay page (seed 002)."""
    token = edge_token(request)
    code = request.query.get("code", "")
    try:
        port = int(request.query.get("port", ""))
    except ValueError:
        port = 0
    if not 1024 <= port <= 65535 or not CODE.match(code):
        return json_error(400, "port (1024-65535) and code (XXXX-XXXX) are required")
    if not token:
        return json_error(401, "no edge token: open this page through the edge proxy")
    body = PAGE.format(code=html.escape(code), port=port, token=html.escape(token, quote=True))
    headers = {
        "Content-Security-Policy": f"default-src 'none'; form-action http://127.0.0.1:{port}; frame-ancestors 'none'",
        "Cache-Control": "no-store",
        # Not "no-referrer": with it, browsers send "Origin: null" and the CLI's Origin check could not work.
        "Referrer-Policy": "origin",
    }
    return web.Response(text=body, content_type="text/html", headers=headers)
