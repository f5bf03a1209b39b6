"""The host engine's endpoint as the director should publish it: address, port, TLS fingerprint, health."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509

from dxflow.common.crypto import cert_fingerprint

__all__ = ["EngineProbe"]

HEALTH_PATH = "/api/engine/healthcheck/"


class EngineProbe:
    """Measures the engine's certificate fingerprint and health."""

    def __init__(self, address: str, port: int, cert_path: Path | None = None) -> None:
        self.address, self.port, self.cert_path = address, port, cert_path
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _fingerprint_sync(self) -> str | None:
        if self.cert_path is not None:
            try:
                return cert_fingerprint(x509.load_pem_x509_certificate(self.cert_path.read_bytes()))
            except (OSError, ValueError):
                return None
        try:
            pem = ssl.get_server_certificate((self.address, self.port), timeout=3)
        except (OSError, ssl.SSLError):
            return None
        return cert_fingerprint(ssl.PEM_cert_to_DER_cert(pem))

    async def healthy(self, fingerprint: str | None) -> bool:
        """GET the health check over TLS pinned to ``fingerprint``."""
        if fingerprint is None:
            return False
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        url = f"https://{self.address}:{self.port}{HEALTH_PATH}"
        try:
            pin = aiohttp.Fingerprint(bytes.fromhex(fingerprint))
            async with self._session.get(url, ssl=pin) as resp:
                return resp.status < 400
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return False

    async def describe(self) -> dict[str, Any]:
        """``{address, port, fingerprint, healthy}`` for the update."""
        fingerprint = await asyncio.to_thread(self._fingerprint_sync)
        return {
            "address": self.address,
            "port": self.port,
            "fingerprint": fingerprint,
            "healthy": await self.healthy(fingerprint),
        }
