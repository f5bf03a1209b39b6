"""Who is calling: mTLS peer certificates (agents, admin automation) and PASETO session cookies.

Every mTLS request's certificate serial is checked (see ``CertChecker``), and every session token's id against the
tokens revoked by logout: a revoke on this replica is effective from the next request, on other replicas within
``revocation_cache_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiohttp import web

from dxflow.common.ca import PeerIdentity, agent_guid_from_cn, peer_identity
from dxflow.director.db import Database
from dxflow.director.policy import PolicyStore
from dxflow.director.tokens import TokenService
from dxflow.protocol.errors import ApiError

__all__ = [
    "COOKIE",
    "CertChecker",
    "Principal",
    "bearer",
    "principal",
    "require_admin",
    "require_agent",
    "require_user",
]

log = logging.getLogger(__name__)
COOKIE = "dcvix_session"
MAX_CACHE = 200_000


class CertChecker:
    """Which certificate serials are still good, without a database query per request.

    A serial is looked up once, then remembered. Revocations reach the memory two ways: this replica's own
    revokes call ``forget()``; ``sync()`` (every ``revocation_cache_seconds``) reads serials revoked since the last
    poll, which is how other replicas' revokes arrive. Session tokens revoked by logout are kept the same way
    (every unexpired one in memory: at most one per login within the token lifetime).
    """

    def __init__(self, db: Database, ttl: float) -> None:
        self._db = db
        self.ttl = ttl
        self._valid: dict[str, str] = {}  # serial -> the agent's bound hostname ("" if none)
        self._revoked: set[str] = set()
        self._identities: dict[bytes, PeerIdentity | None] = {}
        self._synced = time.time()
        self._revoked_tokens: dict[str, float] = db.tokens_revoked_since(0.0)  # jti -> expiry

    def token_revoked(self, jti: str | None) -> bool:
        return jti is not None and jti in self._revoked_tokens

    async def revoke_token(self, jti: str, expires: float) -> None:
        """Logout: refuse this token id from now on, here at once and on other replicas after their next sync."""
        self._revoked_tokens[jti] = expires
        await asyncio.to_thread(self._db.revoke_token, jti, expires)

    async def valid(self, serial: str) -> bool:
        if serial in self._revoked:
            return False
        if serial in self._valid:
            return True
        hostname = await asyncio.to_thread(self._db.cert_valid, serial)
        if len(self._valid) > MAX_CACHE:
            self._valid.clear()
        if hostname is None:
            self._revoked.add(serial)
            return False
        self._valid[serial] = hostname
        return True

    def bound_hostname(self, serial: str) -> str:
        """The hostname bound to a valid agent certificate's agent ("" when none yet); call after ``valid``."""
        return self._valid.get(serial, "")

    def remember_hostname(self, serial: str, hostname: str) -> None:
        if serial in self._valid:
            self._valid[serial] = hostname

    async def sync(self) -> None:
        """Learn revocations made anywhere since the last poll (with slack for clock skew between hosts)."""
        now = time.time()
        since = self._synced - max(5.0, 2 * self.ttl)
        revoked = await asyncio.to_thread(self._db.revoked_since, since)
        tokens = await asyncio.to_thread(self._db.tokens_revoked_since, since)
        self._synced = now
        self._revoked_tokens = {j: e for j, e in self._revoked_tokens.items() if e >= now} | tokens
        if revoked:
            self._revoked.update(revoked)
            for serial in revoked:
                self._valid.pop(serial, None)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.ttl)
            try:
                await self.sync()
            except Exception:
                log.exception("revocation sync failed; forgetting cached answers")
                self._valid.clear()

    def identify(self, request: web.Request) -> PeerIdentity | None:
        """``peer(request)``, memoized by certificate bytes (parsing costs more than the rest of an update)."""
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            return None
        try:
            return self._identities[der]
        except KeyError:
            pass
        if len(self._identities) > MAX_CACHE:
            self._identities.clear()
        ident = self._identities[der] = peer_identity(der)
        return ident

    def forget(self) -> None:
        """Drop every remembered answer (after a revoke or deny on this replica): next requests ask the DB."""
        self._valid.clear()
        self._revoked.clear()


@dataclass(frozen=True)
class Principal:
    """An authenticated person or automation client."""

    name: str
    admin: bool
    via: str  # "mtls" or "token"


async def require_agent(request: web.Request, certs: CertChecker) -> tuple[str, PeerIdentity]:
    """The GUID of the calling agent; 401 without a client certificate, 403 when revoked or not an agent."""
    ident = certs.identify(request)
    if ident is None:
        raise ApiError(401, "client certificate required")
    guid = agent_guid_from_cn(ident.common_name)
    if ident.role != "agent" or guid is None:
        raise ApiError(403, "not an agent certificate")
    if not await certs.valid(ident.serial):
        raise ApiError(403, "certificate revoked or unknown")
    return guid, ident


def bearer(request: web.Request) -> str | None:
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
    ident = certs.identify(request)
    if ident is not None and ident.role == "admin":
        if not await certs.valid(ident.serial):
            raise ApiError(403, "certificate revoked or unknown")
        return Principal(name=ident.common_name, admin=True, via="mtls")
    token = bearer(request)
    if token:
        claims = tokens.verify(token)
        if claims is not None and claims.scope == "session" and not certs.token_revoked(claims.token_id):
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
