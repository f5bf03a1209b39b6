"""Tokens for targets that have no profile of their own (inventory hosts reached by address and key).

A profile caches its token in ``connection-token``; a host known only by address and key gets its token cached in
``<home>/cache/tokens/<digest>`` (0600, directory 0700), keyed by address, key path and pinned fingerprint, so
later processes (one per Ansible task) reuse it instead of logging in again. A cached token is used only while the key
at that path is the one it was issued to (``TokenManager`` compares the token's identity claim with the key's id).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from dxflow.client.auth import quick_inspect
from dxflow.client.settings import ConnectionSettings
from dxflow.common.files import ensure_private_dir, write_private

__all__ = ["TokenCache"]


class TokenCache:
    """File cache of tokens under ``<home>/cache/tokens/``."""

    def __init__(self, home: Path) -> None:
        self.folder = Path(home) / "cache" / "tokens"

    def path(self, settings: ConnectionSettings) -> Path:
        ident = "\n".join((settings.address, settings.key or "", settings.fingerprint or ""))
        return self.folder / hashlib.sha256(ident.encode()).hexdigest()[:32]

    def applies(self, settings: ConnectionSettings) -> bool:
        """Only key logins whose token the profile does not already keep."""
        return bool(settings.key) and settings.auth_mode == "key" and not settings.token_persistable

    def load(self, settings: ConnectionSettings) -> ConnectionSettings:
        """``settings`` with the cached token filled in (when there is one that has not expired). An explicit token is
        kept; a profile's token is replaced (it belongs to the profile's key, and this login uses another)."""
        explicit = settings.token and settings.sources.get("connection-token") != "profile"
        if explicit or not self.applies(settings):
            return settings
        try:
            token = self.path(settings).read_text().strip()
        except OSError:
            return settings
        if not token or quick_inspect(token) is False:
            return settings
        # Marked as cached: the token manager uses it only if it was issued to the key configured now.
        return dataclasses.replace(settings, token=token, sources={**settings.sources, "connection-token": "cache"})

    def save(self, settings: ConnectionSettings, token: str | None) -> None:
        if not token or not self.applies(settings) or token == settings.token:
            return
        ensure_private_dir(self.folder)
        write_private(self.path(settings), token)
