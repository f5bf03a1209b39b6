"""The agent's calls to the director: register (trust on first use), renew and update over mTLS."""

from __future__ import annotations

import logging
import ssl
from typing import Any

import aiohttp

from dxflow.agent.identity import AgentIdentity

__all__ = ["DirectorLink", "LinkError", "PendingApproval"]

log = logging.getLogger(__name__)
TIMEOUT = aiohttp.ClientTimeout(total=20, connect=5)


class LinkError(Exception):
    """The director could not be reached or refused the request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PendingApproval(LinkError):
    """Registered, waiting for an administrator (403 pending approval)."""


class DirectorLink:
    """HTTP to the director, verified against the pinned CA once there is one."""

    def __init__(
        self,
        address: str,
        identity: AgentIdentity,
        *,
        ca_override: str | None = None,
        registration_token: str | None = None,
    ) -> None:
        self.address = address.rstrip("/")
        self.identity = identity
        self._ca_override = ca_override
        self._token = registration_token
        self._session: aiohttp.ClientSession | None = None
        self._ctx: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"DirectorLink(address={self.address!r}, guid={self.identity.guid!r})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def ca_file(self) -> str | None:
        if self._ca_override:
            return self._ca_override
        return str(self.identity.ca_path) if self.identity.ca_path.exists() else None

    def reload(self) -> None:
        """Rebuild the TLS context (after a new certificate or the first CA pin)."""
        self._ctx = None

    def _ssl(self, *, client_cert: bool) -> ssl.SSLContext | bool:
        ca = self.ca_file()
        if ca is None:
            return False  # trust on first use: only for the first registration
        if client_cert:
            if self._ctx is None:
                ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
                ctx.load_cert_chain(str(self.identity.cert_path), str(self.identity.key_path))
                self._ctx = ctx
            return self._ctx
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)

    async def _post(self, path: str, body: dict[str, Any], *, client_cert: bool) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        try:
            async with self._session.post(
                self.address + path, json=body, ssl=self._ssl(client_cert=client_cert)
            ) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = {}
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError, ssl.SSLError) as exc:
            raise LinkError(f"{path}: {exc.__class__.__name__}: {exc}") from None
        data = data if isinstance(data, dict) else {}
        if status == 403 and data.get("error") == "pending approval":
            raise PendingApproval("pending approval", status)
        if status >= 400:
            raise LinkError(f"{path}: {status} {data.get('error', '')}".rstrip(), status)
        return data

    async def register(self, hostname: str) -> dict[str, Any]:
        """POST /v1/agent/register; stores the certificate and pins the CA on success."""
        body: dict[str, Any] = {"guid": self.identity.guid, "hostname": hostname, "csr": self.identity.csr()}
        if self._token:
            body["registrationToken"] = self._token
        first = self.ca_file() is None
        data = await self._post("/v1/agent/register", body, client_cert=False)
        self.identity.store(str(data["certificate"]), str(data["ca"]))
        self.reload()
        if first:
            # The CA came over an unverified channel: check that the director really holds it.
            await self._check_pinned()
            log.info("pinned the director CA in %s", self.identity.ca_path)
        return data

    async def _check_pinned(self) -> None:
        assert self._session is not None
        try:
            async with self._session.get(self.address + "/v1/health", ssl=self._ssl(client_cert=True)) as resp:
                await resp.read()
        except (aiohttp.ClientError, OSError, ssl.SSLError) as exc:
            self.identity.ca_path.unlink(missing_ok=True)
            raise LinkError(f"the director's certificate is not signed by the CA it sent: {exc}") from None

    async def renew(self) -> dict[str, Any]:
        """POST /v1/agent/renew over mTLS; stores the new certificate."""
        data = await self._post("/v1/agent/renew", {"csr": self.identity.csr()}, client_cert=True)
        self.identity.store(str(data["certificate"]), None)
        self.reload()
        return data

    async def update(self, body: dict[str, Any]) -> None:
        await self._post("/v1/agent/update", body, client_cert=True)
