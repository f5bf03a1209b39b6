"""The host engine as the agent sees it: its endpoint for the director (address, port, TLS fingerprint, health)
and one ``AsyncEngineClient`` pinned to its current certificate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cryptography import x509

from dxflow.client.aio.engine import AsyncEngineClient
from dxflow.client.engine_wire import INFO_PATH
from dxflow.client.settings import ConnectionSettings
from dxflow.client.tls import server_fingerprint
from dxflow.common.crypto import cert_fingerprint
from dxflow.protocol.errors import DxflowError, TransportError

__all__ = ["EngineProbe"]

ENGINE_TIMEOUT = 10.0
"""Seconds for one call to the host's engine (health checks run on every update)."""


class EngineProbe:
    """Measures the engine's certificate fingerprint and health; logs in with ``key`` for shell sessions."""

    def __init__(self, address: str, port: int, cert_path: Path | None = None, key: Path | None = None) -> None:
        self.address, self.port, self.cert_path, self.key = address, port, cert_path, key
        host = f"[{address}]" if ":" in address else address
        self.url = f"https://{host}:{port}"
        self._client: AsyncEngineClient | None = None
        self._version: tuple[str, str | None] | None = None  # (fingerprint, engine version) last read

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _fingerprint_sync(self) -> str | None:
        if self.cert_path is not None:
            try:
                return cert_fingerprint(x509.load_pem_x509_certificate(self.cert_path.read_bytes()))
            except (OSError, ValueError):
                return None
        return server_fingerprint(self.url, timeout=3)

    async def _pinned(self, fingerprint: str) -> AsyncEngineClient:
        """The client pinned to ``fingerprint`` (a new one when the engine's certificate changed)."""
        client = self._client
        if client is None or client.settings.fingerprint != fingerprint:
            if client is not None:
                await client.close()
            settings = ConnectionSettings(
                profile="agent-engine",
                profile_exists=False,
                address=self.url,
                key=str(self.key) if self.key else None,
                mode="key",
                fingerprint=fingerprint,
                timeout=ENGINE_TIMEOUT,
            )
            client = self._client = AsyncEngineClient(settings)
        return client

    async def describe(self) -> dict[str, Any]:
        """``{address, port, fingerprint, healthy}`` for the update, and ``version`` when the agent can log in."""
        fingerprint = await asyncio.to_thread(self._fingerprint_sync)
        healthy = fingerprint is not None and await (await self._pinned(fingerprint)).healthy()
        out: dict[str, Any] = {"address": self.address, "port": self.port, "fingerprint": fingerprint}
        out["healthy"] = healthy
        if healthy and fingerprint is not None:
            version = await self._engine_version(fingerprint)
            if version:
                out["version"] = version
        return out

    async def _engine_version(self, fingerprint: str) -> str | None:
        """The engine's version from ``/api/engine/info/`` (needs the engine key), read again only when the
        engine's certificate changes (a restart after an upgrade may keep it: the agent restarts with the package)."""
        if self._version is not None and self._version[0] == fingerprint:
            return self._version[1]
        client = await self._pinned(fingerprint)
        version = None
        if client.can_login:
            try:
                info = (await client.authed("GET", INFO_PATH)).entities
            except DxflowError:
                return None  # asked again on the next update
            if info and isinstance(info[0], dict) and info[0].get("version"):
                version = str(info[0]["version"])
        self._version = (fingerprint, version)
        return version

    async def client(self) -> AsyncEngineClient:
        """The engine's client, pinned to the certificate it presents now; TransportError when there is none."""
        fingerprint = await asyncio.to_thread(self._fingerprint_sync)
        if fingerprint is None:
            raise TransportError(f"cannot read the certificate of the engine at {self.url}")
        return await self._pinned(fingerprint)
