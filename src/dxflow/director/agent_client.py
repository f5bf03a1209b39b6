"""The director's calls to agents (dcvix agent API): ``AsyncAgentClient`` over the agent's tunnel when it has one
(``tunnels``, the hub), else over mTLS to the agent's port, with the errors reworded for the director's callers:
an agent that cannot be reached or fails is a 502, a refusal keeps its status, both name the agent."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dxflow.client.aio.agent import AgentEndpoint, AsyncAgentClient
from dxflow.protocol import director_wire as wire
from dxflow.protocol.errors import ApiError, TransportError

__all__ = ["AgentClient"]

log = logging.getLogger(__name__)


class AgentClient:
    """A keep-alive client for talking to agents."""

    def __init__(self, ca: Path, cert: Path, key: Path) -> None:
        self.client = AsyncAgentClient(str(ca), str(cert), str(key))
        self.tunnels: Any = None  # the hub (dxflow.director.hub.Hub): agents with a tunnel are called through it

    async def close(self) -> None:
        await self.client.close()

    def _endpoint(self, server: Mapping[str, Any], common_name: str) -> AgentEndpoint:
        tunnel = self.tunnels.find(server["id"]) if self.tunnels is not None else None
        return AgentEndpoint(server["ip"], int(server["agentPort"]), common_name, tunnel)

    @contextlib.contextmanager
    def _errors(self, server: Mapping[str, Any]) -> Iterator[None]:
        try:
            yield
        except TransportError as exc:
            log.warning("agent %s (%s) unreachable: %s", server["id"], server["hostname"], exc)
            raise ApiError(502, f"agent {server['hostname']} unreachable: {exc}") from None
        except ApiError as exc:
            if not exc.method:  # raised by the channel itself, already phrased for the director's callers
                raise
            status = 502 if exc.status_code >= 500 else exc.status_code
            raise ApiError(status, f"agent {server['hostname']}: {exc.message}") from None

    async def create_session(
        self, server: Mapping[str, Any], common_name: str, request: wire.SessionRequest
    ) -> wire.SessionCreated:
        """``POST /v1/sessions`` on the server's agent."""
        with self._errors(server):
            return await self.client.create_session(self._endpoint(server, common_name), request)

    async def close_session(self, server: Mapping[str, Any], common_name: str, session_id: str) -> None:
        """``DELETE /v1/sessions/{id}`` on the server's agent."""
        with self._errors(server):
            await self.client.close_session(self._endpoint(server, common_name), session_id)

    async def set_config(self, server: Mapping[str, Any], common_name: str, body: Mapping[str, Any]) -> Any:
        """``POST /v1/config`` on the server's agent: its remote configuration after the change."""
        with self._errors(server):
            return await self.client.set_config(self._endpoint(server, common_name), body)
