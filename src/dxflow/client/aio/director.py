"""``AsyncDirectorClient``: the agent's side of the director/agent protocol (register, renew, update)."""

from __future__ import annotations

from typing import Any

from dxflow.client.aio._http import HttpClient, SslArg
from dxflow.client.tls import client_context
from dxflow.protocol import director_wire as wire

__all__ = ["AsyncDirectorClient"]


class AsyncDirectorClient:
    """Calls to one director with the agent's mTLS identity, verified against the pinned director CA.

    ``ca`` is None until the first registration pinned it: that one call is trust on first use (unverified).
    """

    def __init__(self, address: str, cert: tuple[str, str], *, ca: str | None = None, timeout: float = 20.0) -> None:
        self.address = address.rstrip("/")
        self.cert = cert
        self.ca = ca
        self._http = HttpClient(timeout)
        self._mtls: SslArg | None = None

    def __repr__(self) -> str:
        return f"AsyncDirectorClient(address={self.address!r}, ca={self.ca!r})"

    async def close(self) -> None:
        await self._http.close()

    def reload(self, ca: str | None) -> None:
        """Use ``ca`` and the current certificate files for the next calls (after a new certificate or a pin)."""
        self.ca, self._mtls = ca, None

    def _ssl(self, *, client_cert: bool) -> SslArg:
        if self.ca is None:
            return False  # trust on first use: only for the first registration
        if not client_cert:
            return client_context(self.ca)
        if self._mtls is None:
            self._mtls = client_context(self.ca, self.cert)
        return self._mtls

    async def _call(self, method: str, path: str, body: Any = None, *, client_cert: bool = True) -> Any:
        url = self.address + path
        reply = await self._http.request(method, url, json=body, ssl=self._ssl(client_cert=client_cert))
        return wire.decode_reply(reply.status, reply.content, reply.reason, method, path, reply.headers)

    async def register(self, guid: str, hostname: str, csr: str, registration_token: str | None = None) -> wire.Issued:
        """``POST /v1/agent/register`` (no client certificate): the issued certificate and CA, PendingApproval
        while no administrator approved the agent."""
        body = wire.register_body(guid, hostname, csr, registration_token)
        return wire.Issued.parse(await self._call("POST", wire.REGISTER, body, client_cert=False))

    async def health(self) -> Any:
        """``GET /v1/health`` over mTLS: proves the director holds a certificate from the pinned CA."""
        return await self._call("GET", wire.HEALTH)

    async def renew(self, csr: str) -> wire.Issued:
        """``POST /v1/agent/renew`` over mTLS."""
        return wire.Issued.parse(await self._call("POST", wire.RENEW, wire.renew_body(csr)))

    async def update(self, body: dict[str, Any]) -> None:
        """``POST /v1/agent/update`` over mTLS (``body`` from ``director_wire.update_body``)."""
        await self._call("POST", wire.UPDATE, body)
