"""The async twin of the SDK, on aiohttp, over the same protocol layer (``dxflow.protocol``) as the sync SDK:

- ``AsyncDirectorClient``: what an agent asks its director (register, renew, update) with its mTLS identity;
- ``AsyncAgentClient``: what the director asks agents (sessions, config);
- ``AsyncEngineClient``: health and shells on an engine, with challenge-response login;
- ``attach_shell`` / ``open_attach``: an engine shell's WebSocket.

The only part of ``dxflow.client`` that imports aiohttp (``pip install 'dxflow[agent]'`` or ``[engine]``).
"""

from dxflow.client.aio.agent import AgentEndpoint, AsyncAgentClient
from dxflow.client.aio.director import AsyncDirectorClient
from dxflow.client.aio.engine import AsyncEngineClient
from dxflow.client.aio.terminal import AttachedShell, attach_shell, open_attach

__all__ = [
    "AgentEndpoint",
    "AsyncAgentClient",
    "AsyncDirectorClient",
    "AsyncEngineClient",
    "AttachedShell",
    "attach_shell",
    "open_attach",
]
