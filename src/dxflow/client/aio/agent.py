"""``AsyncAgentClient``: the director's side of the director/agent protocol (dcvix agent API)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dxflow.client.aio._http import HttpClient
from dxflow.client.tls import client_context
from dxflow.protocol import director_wire as wire

__all__ = ["AgentChannel", "AgentEndpoint", "AsyncAgentClient"]


class AgentChannel(Protocol):
    """Another way to carry an agent API call (the director's tunnel to the agent): ``(status, decoded body)``."""

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]: ...


@dataclass(frozen=True)
class AgentEndpoint:
    """Where an agent listens and the name its certificate must carry (``dxflow-agent-<guid>``); with a
    ``channel`` the calls take it instead of HTTPS to ``host:port``."""

    host: str
    port: int
    name: str
    channel: AgentChannel | None = field(default=None, compare=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


class AsyncAgentClient:
    """Calls to agents over mTLS with the director's certificate. Each agent's certificate must chain to the
    director CA and carry the agent's name, checked as the TLS host name, so a call meant for one agent cannot be
    answered by another."""

    def __init__(self, ca: str, cert: str, key: str, *, timeout: float = 30.0) -> None:
        self._ssl = client_context(ca, (cert, key))
        self._http = HttpClient(timeout)

    async def close(self) -> None:
        await self._http.close()

    async def _call(self, agent: AgentEndpoint, method: str, path: str, body: Any = None) -> Any:
        if agent.channel is not None:
            status, data = await agent.channel.call(method, path, body)
            if status >= 400:
                raise wire.reply_error(status, data, "", method, path)
            return data
        reply = await self._http.request(method, agent.url + path, json=body, ssl=self._ssl, server_hostname=agent.name)
        return wire.decode_reply(reply.status, reply.content, reply.reason, method, path, reply.headers)

    async def create_session(self, agent: AgentEndpoint, request: wire.SessionRequest) -> wire.SessionCreated:
        """``POST /v1/sessions``: the id of the session the agent created."""
        data = await self._call(agent, "POST", wire.AGENT_SESSIONS, request.body())
        return wire.SessionCreated.parse(data, request.session_id)

    async def sessions(self, agent: AgentEndpoint) -> list[dict[str, Any]]:
        """``GET /v1/sessions``: the agent's sessions ``{id, owner, type, state, ...}``."""
        data = await self._call(agent, "GET", wire.AGENT_SESSIONS)
        return data if isinstance(data, list) else []

    async def close_session(self, agent: AgentEndpoint, session_id: str) -> Any:
        """``DELETE /v1/sessions/{id}``."""
        return await self._call(agent, "DELETE", wire.agent_session_path(session_id))

    async def set_config(self, agent: AgentEndpoint, body: Mapping[str, Any]) -> Any:
        """``POST /v1/config`` ``{tags, parameters}``: the agent's remote configuration after the change."""
        return await self._call(agent, "POST", wire.AGENT_CONFIG, dict(body))
