"""The one aiohttp session wrapper of the async twin: connection and TLS failures → TransportError/TLSVerifyError,
the reply as plain data for the protocol layer to read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ssl import SSLContext, SSLError
from typing import Any

import aiohttp

from dxflow.protocol.errors import TLSVerifyError, TransportError

__all__ = ["HttpClient", "RawReply", "SslArg", "fingerprint_pin"]

SslArg = SSLContext | aiohttp.Fingerprint | bool
"""aiohttp's ``ssl=``: a context, a pinned fingerprint, True (system CAs) or False (no verification)."""


@dataclass(frozen=True)
class RawReply:
    """A whole reply: status, reason, headers, body."""

    status: int
    reason: str
    headers: Mapping[str, str]
    content: bytes


def fingerprint_pin(digest: bytes) -> aiohttp.Fingerprint:
    """aiohttp's check of a certificate's SHA-256 digest."""
    return aiohttp.Fingerprint(digest)


class HttpClient:
    """One keep-alive aiohttp session, created on first use inside the running loop."""

    def __init__(self, timeout: float = 30.0, connect_timeout: float = 5.0) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers={"User-Agent": "dxflow-sdk"})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        ssl: SslArg = True,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        server_hostname: str | None = None,
    ) -> RawReply:
        """Send one request and read the whole reply; TransportError when the peer cannot be reached, TLSVerifyError
        when its certificate is refused."""
        extra = {"server_hostname": server_hostname} if server_hostname else {}
        try:
            async with self.session.request(method, url, json=json, headers=headers, ssl=ssl, **extra) as resp:
                content = await resp.read()
                return RawReply(resp.status, resp.reason or "", resp.headers, content)
        except (aiohttp.ServerFingerprintMismatch, aiohttp.ClientConnectorCertificateError) as exc:
            raise TLSVerifyError(url.split("/", 3)[2], None, f"{exc.__class__.__name__}: {exc}") from None
        except (aiohttp.ClientError, OSError, TimeoutError, SSLError) as exc:
            raise TransportError(f"{method} {url}: {exc.__class__.__name__}: {exc}".rstrip(": ")) from None
