"""Edge (identity-aware proxy) support shared by the engine and the director (DESIGN §2, seed 002).

When ``edge_jwks`` is configured, every request must carry the proxy's JWT (``Cf-Access-Jwt-Assertion`` header or
``CF_Authorization`` cookie), verified for signature (a key of the JWKS, by ``kid``), audience, expiry and, when
set, issuer — before any other handling. ``/auth/connect`` is the relay page of the CLI's browser login: it hands
the caller's edge token to the CLI's localhost callback after the person compares a confirmation code.
"""

from __future__ import annotations

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
    """Checks edge JWTs against a JWKS from a file (re-read when it changes) or an ``https://`` URL."""

    def __init__(self, jwks: str, audience: str, issuer: str | None = None) -> None:
        if not audience:
            raise ValueError("edge_audience is required with edge_jwks")
        self.audience, self.issuer = audience, issuer
        self._source = jwks
        self._client = jwt.PyJWKClient(jwks, cache_keys=True, lifespan=300) if jwks.startswith("https://") else None
        self._keys: jwt.PyJWKSet | None = None
        self._mtime = 0.0
        if self._client is None:
            self._load_file()

    def _load_file(self) -> jwt.PyJWKSet:
        path = Path(self._source)
        mtime = path.stat().st_mtime
        if self._keys is None or mtime != self._mtime:
            self._keys = jwt.PyJWKSet.from_json(path.read_text())
            self._mtime = mtime
        return self._keys

    def _key(self, token: str) -> Any:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = jwt.get_unverified_header(token).get("kid")
        keys = self._load_file()
        if kid is None and len(keys.keys) == 1:
            return keys.keys[0].key
        return keys[str(kid)].key

    def verify(self, token: str) -> dict[str, Any]:
        """The verified claims; ``jwt.PyJWTError`` (or KeyError for an unknown ``kid``) otherwise."""
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
