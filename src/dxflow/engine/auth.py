"""Challenge-response login, token inspection and the auth middleware (DESIGN §3)."""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from dxflow.engine.keys import KeyStore
from dxflow.engine.permissions import Permission, allows
from dxflow.engine.tokens import MAX_LIFETIME, MIN_LIFETIME, Claims, InvalidToken, TokenIssuer
from dxflow.protocol.durations import format_duration, parse_duration
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import read_json
from dxflow.server.middleware import Handler
from dxflow.server.openapi import declare
from dxflow.server.ratelimit import RateLimiter, client_key
from dxflow.server.responses import ok

__all__ = ["AuthService", "auth_middleware", "public", "requires"]

log = logging.getLogger(__name__)
CLAIMS_KEY = "dxflow.claims"
PENDING_PER_CLIENT = 64


@dataclass
class _Challenge:
    nonce: str
    expires: float
    address: str
    client: str


class AuthService:
    """Issues single-use nonces and trades valid signatures for tokens.

    Outstanding nonces are capped per client (address, or /64 for IPv6: ``client_key``) at ``per_client``, and in
    all at ``max_pending``. A client over its own cap loses its oldest nonce; when the total is full, the client
    holding the most loses its oldest. So many addresses together cannot lock anyone out: a challenge is never
    refused for want of room.
    """

    def __init__(
        self,
        keys: KeyStore,
        issuer: TokenIssuer,
        *,
        challenge_lifetime: float,
        token_lifetime: float,
        rate: float,
        burst: int,
        max_pending: int,
        per_client: int = PENDING_PER_CLIENT,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.challenge_lifetime = challenge_lifetime
        self.token_lifetime = token_lifetime
        self.max_pending = max_pending
        self.per_client = max(1, min(per_client, max_pending))
        self._pending: dict[str, _Challenge] = {}
        self._by_client: dict[str, dict[str, None]] = {}  # client key -> its identities, oldest first
        self._limiter = RateLimiter(rate, burst)

    def _drop(self, identity: str) -> _Challenge | None:
        challenge = self._pending.pop(identity, None)
        if challenge is not None:
            held = self._by_client[challenge.client]
            del held[identity]
            if not held:
                del self._by_client[challenge.client]
        return challenge

    def _expire(self) -> None:
        now = time.monotonic()
        for identity in [i for i, c in self._pending.items() if c.expires <= now]:
            self._drop(identity)

    def _make_room(self, client: str) -> None:
        held = self._by_client.get(client, {})
        if len(held) >= self.per_client:
            self._drop(next(iter(held)))
        if len(self._pending) >= self.max_pending:
            self._expire()
        if len(self._pending) >= self.max_pending:
            greediest = max(self._by_client.values(), key=len)
            self._drop(next(iter(greediest)))

    def challenge(self, address: str) -> dict[str, str]:
        if not self._limiter.allow(address):
            raise ApiError(429, "too many challenge requests; slow down", headers={"Retry-After": "1"})
        client = client_key(address)
        self._make_room(client)
        identity, nonce = secrets.token_hex(16), secrets.token_urlsafe(32)
        self._pending[identity] = _Challenge(nonce, time.monotonic() + self.challenge_lifetime, address, client)
        self._by_client.setdefault(client, {})[identity] = None
        return {"identity": identity, "nonce": nonce, "lifetime": format_duration(self.challenge_lifetime)}

    def verify(self, identity: str, signature_b64: str, lifetime: float | None) -> tuple[str, Claims]:
        """A token for the key whose signature over the nonce checks out; ApiError(401) otherwise."""
        challenge = self._drop(identity)  # single use, even when the signature is wrong
        if challenge is None or challenge.expires <= time.monotonic():
            raise ApiError(401, "unknown, used or expired challenge; request a new one")
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "signature must be standard base64") from None
        message = challenge.nonce.encode()
        key = next((k for k in self.keys.enabled() if k.verifies(message, signature)), None)
        if key is None:
            log.info("login refused for challenge %s from %s: no enabled key matches", identity, challenge.address)
            raise ApiError(401, "signature does not match any registered, enabled key")
        token, claims = self.issuer.mint(key.name, key.key_id, key.permissions, lifetime or self.token_lifetime)
        log.info("login: key %s (%s) from %s", key.name, key.key_id, challenge.address)
        return token, claims

    def check(self, token: str) -> Claims:
        """Claims of a token whose key is still registered and enabled; InvalidToken otherwise."""
        claims = self.issuer.verify(token)
        key = self.keys.get(claims.sub)
        if key is None or key.disabled or key.key_id != claims.identity:
            raise InvalidToken("the token's key is unregistered or disabled")
        return claims


AUTH_KEY = web.AppKey("auth", AuthService)


def public(handler: Handler) -> Handler:
    """Mark a handler as needing no token."""
    handler.dxflow_public = True  # type: ignore[attr-defined]
    return handler


def requires(permission: Permission, *, write: bool | None = None) -> Callable[[Handler], Handler]:
    """Mark a handler as needing ``permission`` (``write`` defaults to: method is not GET/HEAD)."""

    def mark(handler: Handler) -> Handler:
        handler.dxflow_permission = (permission, write)  # type: ignore[attr-defined]
        return handler

    return mark


def _token_of(request: web.Request) -> tuple[str | None, bool]:
    """The request's token and whether it came from the ``authorization`` cookie (which a browser attaches by
    itself, so it needs the same-origin check)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None, False
    cookie = request.cookies.get("authorization")
    if cookie:
        return cookie.removeprefix("Bearer ").strip(), True
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.query.get("authorization"), False
    return None, False


def _origin_netloc(origin: str) -> str | None:
    """``host[:port]`` of an ``Origin`` header, None for ``null`` or garbage."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host if port is None else f"{host}:{port}"


def check_same_origin(request: web.Request) -> None:
    """Refuse (403) a cookie-authenticated request a browser sent on behalf of another site: ``Sec-Fetch-Site:
    cross-site``, an ``Origin`` of ``null`` or one whose host and port are not this request's ``Host``."""
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise ApiError(403, "cross-site request refused: cookie authentication is for the engine's own pages")
    origin = request.headers.get("Origin")
    if origin is None:
        return
    netloc = _origin_netloc(origin)
    if netloc is None or netloc.lower() != request.host.lower():
        raise ApiError(403, f"cross-origin request refused (Origin {origin[:100]!r}): send Authorization: Bearer")


def claims_of(request: web.Request) -> Claims:
    """The verified claims of the current request (set by the middleware)."""
    return request[CLAIMS_KEY]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the token and the handler's permission before the handler runs."""
    route_handler = getattr(request.match_info, "handler", None)
    if route_handler is None or getattr(route_handler, "dxflow_public", False) or request.method == "OPTIONS":
        return await handler(request)
    if not request.path.startswith("/api/"):
        return await handler(request)
    token, from_cookie = _token_of(request)
    if from_cookie:
        check_same_origin(request)
    if not token:
        raise ApiError(
            401, "authentication required: send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        claims = request.app[AUTH_KEY].check(token)
    except InvalidToken as exc:
        raise ApiError(401, str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    permission, write = getattr(route_handler, "dxflow_permission", (Permission.MASTER, None))
    if write is None:
        write = request.method not in ("GET", "HEAD")
    if not allows(claims.permissions, permission, write=write):
        raise ApiError(
            403,
            f"permission denied: {permission.value} required"
            + (
                " (read-only token: its key is registered with READ_ONLY, which allows viewing only; "
                "register the key again without READ_ONLY to make changes)"
                if write and "READ_ONLY" in claims.permissions
                else ""
            ),
        )
    request[CLAIMS_KEY] = claims
    return await handler(request)


def _lifetime(body: dict[str, object]) -> float | None:
    """The requested token lifetime; None (the default) when omitted or outside 1m-24h, as the public API says."""
    raw = body.get("lifetime")
    if raw in (None, ""):
        return None
    try:
        seconds = parse_duration(raw)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return seconds if MIN_LIFETIME <= seconds <= MAX_LIFETIME else None


@public
async def challenge_handler(request: web.Request) -> web.Response:
    """A single-use nonce to sign: ``{identity, nonce, lifetime}`` (rate-limited per address)."""
    address = request.remote or "unknown"
    return ok([request.app[AUTH_KEY].challenge(address)])


@public
@declare(
    body={"identity": {"type": "string"}, "signature": {"type": "string"}, "lifetime": {"type": "string"}},
    required=("identity", "signature"),
)
async def verify_handler(request: web.Request) -> web.Response:
    """Trade the challenge's signature (base64, RSA PKCS#1 v1.5 SHA-256) for ``{token, permissions, expires_at}``."""
    body = await read_json(request, required=("identity", "signature"))
    identity, signature = body["identity"], body["signature"]
    if not isinstance(identity, str) or not isinstance(signature, str):
        raise ApiError(400, "identity and signature must be strings")
    token, claims = request.app[AUTH_KEY].verify(identity, signature, _lifetime(body))
    return ok([{"token": token, "permissions": claims.permissions, "expires_at": int(claims.exp)}])


@requires(Permission.READ_ONLY)
async def inspect_handler(request: web.Request) -> web.Response:
    """202 and the claims of the request's token while it is valid."""
    return ok([claims_of(request).to_dict()], message="Accepted", code=202)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/auth/challenge/", challenge_handler)
    app.router.add_post("/api/auth/verify/", verify_handler)
    app.router.add_get("/api/auth/inspect/", inspect_handler)
