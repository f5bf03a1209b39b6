"""Who is calling: mTLS peer certificates (agents, admin automation) and PASETO session cookies.

Every mTLS request's certificate serial is checked against the database, so a revoked certificate is
refused at once. Answers are cached for ``revocation_cache_seconds``; this replica's own revokes clear the
cache immediately, other replicas see them within that time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiohttp import web

from dxflow.common.ca import PeerIdentity, agent_guid_from_cn, peer_identity
from dxflow.director.db import Database
from dxflow.director.errors import ApiError
from dxflow.director.policy import PolicyStore
from dxflow.director.tokens import TokenService

__all__ = ["COOKIE", "CertChecker", "Principal", "peer"]

COOKIE = "dcvix_session"
MAX_CACHE = 200_000


class CertChecker:
    """Cached "is this serial still good" lookups."""

    def __init__(self, db: Database, ttl: float) -> None:
        self._db = db
        self._ttl = ttl
        self._cache: dict[str, tuple[bool, float]] = {}

    async def valid(self, serial: str) -> bool:
        now = time.monotonic()
        hit = self._cache.get(serial)
        if hit is not None and now - hit[1] < self._ttl:
            return hit[0]
        ok = await asyncio.to_thread(self._db.cert_valid, serial)
        if len(self._cache) > MAX_CACHE:
            self._cache.clear()
        self._cache[serial] = (ok, now)
        return ok

    def forget(self) -> None:
        """Drop every cached answer (after a revoke, deny or delete)."""
        self._cache.clear()


@dataclass(frozen=True)
class Principal:
    """An authenticated person or automation client."""

    name: str
    admin: bool
    via: str  # "mtls" or "token"


def peer(request: web.Request) -> PeerIdentity | None:
    """The verified client certificate of this connection, if one was presented."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_object is None:
        return None
    return peer_identity(ssl_object.getpeercert(binary_form=True))


async def require_agent(request: web.Request, certs: CertChecker) -> tuple[str, PeerIdentity]:
    """The GUID of the calling agent; 401 without a client certificate, 403 when revoked or not an agent."""
    ident = peer(request)
    if ident is None:
        raise ApiError(401, "client certificate required")
    guid = agent_guid_from_cn(ident.common_name)
    if ident.role != "agent" or guid is None:
        raise ApiError(403, "not an agent certificate")
    if not await certs.valid(ident.serial):
        raise ApiError(403, "certificate revoked or unknown")
    return guid, ident


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


async def principal(
    request: web.Request, certs: CertChecker, tokens: TokenService, policy: PolicyStore
) -> Principal | None:
    """The caller from an admin client certificate or a session token (cookie or bearer), else None.

    Raises 403 for a presented admin certificate that is revoked.
    """
    ident = peer(request)
    if ident is not None and ident.role == "admin":
        if not await certs.valid(ident.serial):
            raise ApiError(403, "certificate revoked or unknown")
        return Principal(name=ident.common_name, admin=True, via="mtls")
    token = _bearer(request)
    if token:
        claims = tokens.verify(token)
        if claims is not None and claims.scope == "session":
            return Principal(name=claims.sub, admin=policy.is_admin(claims.sub), via="token")
    return None


async def require_user(
    request: web.Request, certs: CertChecker, tokens: TokenService, policy: PolicyStore
) -> Principal:
    """Any authenticated caller; 401 otherwise."""
    who = await principal(request, certs, tokens, policy)
    if who is None:
        raise ApiError(401, "authentication required")
    return who


async def require_admin(
    request: web.Request, certs: CertChecker, tokens: TokenService, policy: PolicyStore
) -> Principal:
    """An administrator; 401 when not authenticated, 403 when not an admin."""
    who = await require_user(request, certs, tokens, policy)
    if not who.admin:
        raise ApiError(403, "administrator rights required")
    return who
