"""RS256 JWTs signed with the engine's own key; verification with a small cache."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["InvalidToken", "TokenIssuer"]

MIN_LIFETIME = 60.0
MAX_LIFETIME = 24 * 3600.0


class InvalidToken(Exception):
    """The token is malformed, forged, expired or for a disabled key."""


@dataclass(frozen=True)
class Claims:
    sub: str
    identity: str
    permissions: list[str]
    writable: bool
    exp: int
    iat: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "identity": self.identity,
            "permissions": self.permissions,
            "writable": self.writable,
            "exp": self.exp,
            "iat": self.iat,
        }


class TokenIssuer:
    """Mints and verifies tokens. Keys are loaded once (PEM parsing costs ~30 ms)."""

    def __init__(self, key: rsa.RSAPrivateKey, cache_size: int = 4096) -> None:
        self._key = key
        self._public = key.public_key()
        self._cache: OrderedDict[str, Claims] = OrderedDict()
        self._cache_size = cache_size

    def mint(self, sub: str, identity: str, permissions: list[str], lifetime: float) -> tuple[str, Claims]:
        """A signed token and its claims."""
        now = int(time.time())
        claims = Claims(
            sub=sub,
            identity=identity,
            permissions=list(permissions),
            writable="READ_ONLY" not in permissions or "MASTER" in permissions,
            exp=now + int(lifetime),
            iat=now,
        )
        payload = claims.to_dict() | {"jti": uuid.uuid4().hex}
        return jwt.encode(payload, self._key, algorithm="RS256"), claims

    def verify(self, token: str) -> Claims:
        """Claims of a valid token; InvalidToken otherwise (only RS256 with our key is accepted)."""
        cached = self._cache.get(token)
        if cached is not None:
            if cached.exp <= time.time():
                self._cache.pop(token, None)
                raise InvalidToken("token expired")
            return cached
        try:
            raw = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                options={"require": ["sub", "exp", "iat", "permissions"]},
            )
            claims = Claims(
                sub=str(raw["sub"]),
                identity=str(raw.get("identity", "")),
                permissions=[str(p) for p in raw["permissions"]],
                writable=bool(raw.get("writable", False)),
                exp=int(raw["exp"]),
                iat=int(raw["iat"]),
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except (jwt.InvalidTokenError, TypeError, ValueError) as exc:
            raise InvalidToken(f"invalid token: {exc}") from None
        self._cache[token] = claims
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return claims
