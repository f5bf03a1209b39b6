"""Token lifecycle (seed 000): quick inspect → deep inspect → challenge-response → persist; reset on 401."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dxflow.client.profiles import ProfileStore
from dxflow.client.settings import ConnectionSettings
from dxflow.protocol.errors import AuthenticationError, ConfigError, ProtocolError

if TYPE_CHECKING:  # cryptography is imported when a key is loaded: a cached token needs none of it
    from cryptography.hazmat.primitives.asymmetric import rsa

    from dxflow.client.transport import Transport

__all__ = [
    "CHALLENGE_PATH",
    "CLOCK_SKEW",
    "VERIFY_PATH",
    "TokenManager",
    "answer_challenge",
    "key_identity",
    "load_key",
    "quick_inspect",
    "token_identity",
    "token_of",
]

log = logging.getLogger(__name__)
CLOCK_SKEW = 30.0
"""A token that expires within this many seconds is treated as expired."""
CHALLENGE_PATH = "/api/auth/challenge/"
VERIFY_PATH = "/api/auth/verify/"


def _claims(token: str) -> dict[str, Any] | None:
    """The JWT's claims, only base64url-decoded (no PyJWT, no cryptography: cheap in every process), or None."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        return None
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2])
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return claims


def token_identity(token: str) -> str | None:
    """The key id (``identity`` claim) an engine token was issued to, unverified; None when it names none."""
    claims = _claims(token)
    value = claims.get("identity") if claims else None
    return value if isinstance(value, str) and value else None


def key_identity(path: str, home: Path | None = None) -> str:
    """The key id (SHA-256 of the public key, as the engine names it) of the private key at ``path``.

    ConfigError when the key cannot be read. The id is memoised by the file's content digest in
    ``<home>/cache/key-ids/`` so a cached token is matched to its key without loading cryptography each time."""
    from dxflow.common.files import ensure_private_dir, is_private, read_key_file, write_private

    file, data = read_key_file(path)
    memo = Path(home) / "cache" / "key-ids" / hashlib.sha256(data).hexdigest()[:32] if home is not None else None
    if memo is not None and is_private(file):
        try:
            known = memo.read_text().strip()
        except OSError:
            known = ""
        if known:
            return known
    from dxflow.common.crypto import key_id

    ident = key_id(load_key(str(file)))
    if memo is not None:
        ensure_private_dir(memo.parent)
        write_private(memo, ident)
    return ident


def quick_inspect(token: str, now: float | None = None) -> bool | None:
    """Local check without the signature: True (has sub, not expiring), False (expired), None (can't tell)."""
    claims = _claims(token)
    if claims is None:
        return None
    if not claims.get("sub") or not isinstance(claims.get("exp"), int | float):
        return None
    return claims["exp"] - CLOCK_SKEW > (now or time.time())


def load_key(path: str) -> rsa.RSAPrivateKey:
    """The RSA private key at ``path``; ConfigError when it is missing, unreadable or open to others."""
    from dxflow.common.crypto import KeyFileError, load_private_key

    try:
        return load_private_key(path)
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None


def answer_challenge(key: rsa.RSAPrivateKey, challenge: Any, lifetime: str | None = None) -> dict[str, str]:
    """The ``POST /api/auth/verify/`` body answering the challenge entity ``{identity, nonce}`` with ``key``."""
    if not isinstance(challenge, dict) or "nonce" not in challenge or "identity" not in challenge:
        raise ProtocolError("the engine's challenge has no nonce or identity")
    from dxflow.common.crypto import sign_nonce

    signature = base64.b64encode(sign_nonce(key, challenge["nonce"])).decode()
    body = {"identity": challenge["identity"], "signature": signature}
    if lifetime:
        body["lifetime"] = lifetime
    return body


def token_of(result: Any) -> str:
    """The token in the verify reply's entity ``{token, expires_at}``."""
    if not isinstance(result, dict) or not isinstance(result.get("token"), str):
        raise ProtocolError("the engine's verify reply holds no token")
    return result["token"]


class TokenManager:
    """Holds the current token for one target and gets a new one when needed."""

    def __init__(self, settings: ConnectionSettings, transport: Transport, store: ProfileStore | None) -> None:
        self.settings = settings
        self.transport = transport
        self.store = store
        self._token = settings.token
        self._key: rsa.RSAPrivateKey | None = None
        self._checked = False
        self._identity: str | None = None
        self.handshakes = 0

    @property
    def can_login(self) -> bool:
        return bool(self.settings.key) and self.settings.auth_mode in ("key", "auto", "edge")

    @property
    def identity(self) -> str | None:
        """The key id of the configured key (None without a key); ConfigError when the key cannot be read."""
        if self._identity is None and self.settings.key:
            self._identity = key_identity(self.settings.key, self.settings.home)
        return self._identity

    @property
    def token_is_cached(self) -> bool:
        """The token was cached (profile or token cache), not given explicitly (parameter, environment, code)."""
        return self.settings.sources.get("connection-token") in ("profile", "cache")

    def _usable_cached(self, token: str) -> bool:
        """A cached token serves only the key it was issued to: with a key configured, its identity claim must match.
        An explicit token always serves as given."""
        if not self.can_login or not self.token_is_cached:
            return True
        mine, theirs = self.identity, token_identity(token)
        if theirs != mine:
            log.info("cached token of key %s not used: the configured key is %s", theirs or "unknown", mine)
            return False
        return True

    @property
    def current(self) -> str | None:
        """The token held now (no check, no login); for callers that cache it elsewhere."""
        return self._token

    def token(self) -> str | None:
        """A token believed valid, logging in when the cached one is missing or expired."""
        mode = self.settings.auth_mode
        if mode == "mtls" or (mode == "edge" and not self._token and not self.settings.key):
            return None  # the client certificate, or the edge token alone, is the credential
        if self.can_login:
            self.identity  # noqa: B018 - a key that cannot be read is an error, never a cached token of another key
        if self._token and not self._checked and not self._usable_cached(self._token):
            self._token = None
        if self._token and not self._checked:
            verdict = quick_inspect(self._token)
            if verdict is None:
                verdict = self.deep_inspect(self._token)
            self._checked = True
            if verdict:
                return self._token
            self._token = None
        if self._token:
            if quick_inspect(self._token) is False:
                self._token = None
            else:
                return self._token
        if not self.can_login:
            raise AuthenticationError(
                401,
                f"no valid token for profile {self.settings.profile!r} and no connection-key to log in; "
                "set connection-key (RSA private key) or connection-token",
            )
        return self.login()

    def deep_inspect(self, token: str) -> bool:
        """Ask the server whether ``token`` is valid."""
        try:
            self.transport.call("GET", "/api/auth/inspect/", token=token)
        except AuthenticationError:
            return False
        return True

    def reset(self) -> None:
        """Forget the current token (after a 401)."""
        self._token = None
        self._checked = False

    def _private_key(self) -> rsa.RSAPrivateKey:
        if self._key is None:
            self._key = load_key(self.settings.key or "")
        return self._key

    def login(self, lifetime: str | None = None) -> str:
        """Challenge-response with the configured key; the new token is persisted to the profile."""
        key = self._private_key()
        challenge = self.transport.call("GET", CHALLENGE_PATH).entities
        body = answer_challenge(key, challenge[0] if challenge else None, lifetime)
        entities = self.transport.call("POST", VERIFY_PATH, json=body).entities
        result = entities[0] if entities else None
        self.handshakes += 1
        self._token = token_of(result)
        self._checked = True
        log.debug(
            "logged in to %s as key %s (token expires %s)",
            self.settings.address,
            token_identity(self._token) or self.identity,
            result.get("expires_at"),
        )
        self._persist(self._token)
        return self._token

    def _persist(self, token: str) -> None:
        if self.store is not None and self.settings.token_persistable:
            self.store.set_value(self.settings.profile, "connection-token", token)
