"""The agent's identity bound to its director: registration with trust on first use (pin the CA the director
sends, then prove the director holds it), renewal and updates, over ``AsyncDirectorClient``.

Errors come from ``dxflow.protocol.errors``: ``PendingApproval`` while no administrator approved the agent,
``ApiError`` for other refusals, ``TransportError`` when the director cannot be reached or verified."""

from __future__ import annotations

import logging
from typing import Any

from dxflow.agent.identity import AgentIdentity
from dxflow.client.aio.director import AsyncDirectorClient
from dxflow.common.ca import registration_proof
from dxflow.protocol.director_wire import Issued
from dxflow.protocol.errors import TransportError

__all__ = ["DirectorLink"]

log = logging.getLogger(__name__)


class DirectorLink:
    """The director's client, verified against the pinned CA once there is one."""

    def __init__(
        self,
        address: str,
        identity: AgentIdentity,
        *,
        ca_override: str | None = None,
        registration_token: str | None = None,
    ) -> None:
        self.identity = identity
        self._ca_override = ca_override
        self._token = registration_token
        self.client = AsyncDirectorClient(address, (str(identity.cert_path), str(identity.key_path)), ca=self.ca_file())

    def __repr__(self) -> str:
        return f"DirectorLink(address={self.client.address!r}, guid={self.identity.guid!r})"

    async def close(self) -> None:
        await self.client.close()

    def ca_file(self) -> str | None:
        if self._ca_override:
            return self._ca_override
        return str(self.identity.ca_path) if self.identity.ca_path.exists() else None

    def reload(self) -> None:
        """Use the current certificate and CA pin for the next calls."""
        self.client.reload(self.ca_file())

    async def register(self, hostname: str) -> Issued:
        """Register; stores the certificate and pins the CA on success."""
        first = self.ca_file() is None
        self.client.reload(self.ca_file())
        csr = self.identity.csr()
        # Until the director is verified (no pinned CA, no director_ca) the token never travels: only a proof of it.
        token = registration_proof(self._token, csr) if first and self._token else self._token
        issued = await self.client.register(self.identity.guid, hostname, csr, token)
        self.identity.store(issued.certificate, issued.ca or None)
        self.reload()
        if first:
            # The CA came over an unverified channel: check that the director really holds it.
            try:
                await self.client.health()
            except TransportError as exc:
                self.identity.ca_path.unlink(missing_ok=True)
                self.reload()
                raise TransportError(f"the director's certificate is not signed by the CA it sent: {exc}") from None
            log.info("pinned the director CA in %s", self.identity.ca_path)
        return issued

    async def renew(self) -> Issued:
        """Renew over mTLS; stores the new certificate."""
        issued = await self.client.renew(self.identity.csr())
        self.identity.store(issued.certificate, None)
        self.reload()
        return issued

    async def update(self, body: dict[str, Any]) -> None:
        await self.client.update(body)
