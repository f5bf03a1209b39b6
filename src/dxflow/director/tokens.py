"""PASETO v4.local session tokens for people (2 h), keyed by ``token_key`` or a persisted random key."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyseto
from pyseto import Key

from dxflow.common.files import write_private

__all__ = ["TOKEN_LIFETIME", "TokenService", "load_token_key"]

log = logging.getLogger(__name__)
TOKEN_LIFETIME = 7200
MAX_SEEN = 50_000


def load_token_key(configured: str | None, data_dir: Path) -> bytes:
    """32 key bytes: SHA-256 of the configured ``token_key``, else ``data_dir/token.key`` (created 0600)."""
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    path = data_dir / "token.key"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(32)
    write_private(path, key.hex() + "\n")
    log.info("generated a token key in %s", path)
    return key


@dataclass(frozen=True)
class SessionClaims:
    """A verified token's content."""

    sub: str
    scope: str
    extra: dict[str, Any]
    expires: float | None = None

    @property
    def token_id(self) -> str | None:
        """The token's id (``jti``), by which logout revokes it."""
        jti = self.extra.get("jti")
        return jti if isinstance(jti, str) else None


class TokenService:
    """Encrypt and check tokens."""

    def __init__(self, key: bytes) -> None:
        self._key = Key.new(version=4, purpose="local", key=key)
        # Tokens already decrypted and checked, with their expiry: a browser sends the same cookie on every
        # request, and pyseto's decrypt + claim parsing costs ~0.3 ms.
        self._seen: dict[str, tuple[SessionClaims, float]] = {}

    def __repr__(self) -> str:
        return "TokenService(key=[secure])"

    def issue(self, sub: str, scope: str, lifetime: int = TOKEN_LIFETIME, **extra: Any) -> str:
        payload = {"sub": sub, "scope": scope, "iat": int(time.time()), "jti": secrets.token_hex(16), **extra}
        return pyseto.encode(self._key, payload, exp=lifetime).decode()

    def verify(self, token: str) -> SessionClaims | None:
        """The claims of a valid, unexpired token, else None."""
        seen = self._seen.get(token)
        if seen is not None:
            if time.time() < seen[1]:
                return seen[0]
            del self._seen[token]
            return None
        if not token.startswith("v4.local.") or len(token) > 4096:
            return None
        try:
            payload = pyseto.decode(self._key, token, deserializer=json).payload
        except (pyseto.PysetoError, ValueError):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("sub"), str):
            return None
        extra = {k: v for k, v in payload.items() if k not in ("sub", "scope", "exp", "iat")}
        try:
            expires = datetime.fromisoformat(str(payload["exp"])).timestamp()
        except (KeyError, ValueError):
            # valid (pyseto checked it) but not cacheable
            return SessionClaims(sub=payload["sub"], scope=str(payload.get("scope", "")), extra=extra)
        claims = SessionClaims(sub=payload["sub"], scope=str(payload.get("scope", "")), extra=extra, expires=expires)
        if len(self._seen) >= MAX_SEEN:
            self._seen.clear()
        self._seen[token] = (claims, expires)
        return claims
