"""Director → agent calls over mTLS with the director's certificate (dcvix agent API).

The agent's certificate must chain to the director CA and carry the agent's name (``dxflow-agent-<guid>``),
checked as the TLS host name, so a call meant for one agent cannot be answered by another.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import aiohttp

from dxflow.protocol.errors import ApiError

__all__ = ["AgentClient"]

log = logging.getLogger(__name__)
TIMEOUT = aiohttp.ClientTimeout(total=30, connect=5)


def client_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    ctx.check_hostname = True
    return ctx


class AgentClient:
    """A keep-alive session for talking to agents."""

    def __init__(self, ca: Path, cert: Path, key: Path) -> None:
        self._ssl = client_context(ca, cert, key)
        self._session: aiohttp.ClientSession | None = None
        self.tunnels: Any = None  # the hub (dxflow.director.hub.Hub): agents with a tunnel are called through it

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._session

    async def call(
        self, server: dict[str, Any], common_name: str, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        """Call the agent of ``server``; 502 when it cannot be reached or answers with an error."""
        tunnel = self.tunnels.find(server["id"]) if self.tunnels is not None else None
        if tunnel is not None:
            return _checked(server, *await tunnel.call(method, path, body))
        host = server["ip"]
        url = f"https://{'[' + host + ']' if ':' in host else host}:{server['agentPort']}{path}"
        try:
            async with self._http().request(method, url, json=body, ssl=self._ssl, server_hostname=common_name) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = None
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("agent %s at %s unreachable: %s", server["id"], url, exc)
            raise ApiError(502, f"agent {server['hostname']} unreachable: {exc.__class__.__name__}") from None
        return _checked(server, status, data)


def _checked(server: dict[str, Any], status: int, data: Any) -> tuple[int, Any]:
    if status >= 400:
        message = data.get("error") if isinstance(data, dict) else None
        raise ApiError(502 if status >= 500 else status, f"agent {server['hostname']}: {message or status}")
    return status, data
