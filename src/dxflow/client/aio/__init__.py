"""The async twin of the SDK, on aiohttp, over the same protocol layer (``dxflow.protocol``) as the sync SDK:

- ``AsyncDirectorClient``: what an agent asks its director (register, renew, update) with its mTLS identity;
- ``AsyncAgentClient``: what the director asks agents (sessions, config);
- ``AsyncEngineClient``: health and shells on an engine, with challenge-response login;
- ``attach_shell`` / ``open_attach``: an engine shell's WebSocket.

The only part of ``dxflow.client`` that imports aiohttp (``pip install 'dxflow[agent]'`` or ``[engine]``). Names load
on first use (PEP 562), so ``dxflow.client.aio.bridge`` does not pay for the clients it does not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dxflow.client.aio.agent import AgentEndpoint, AsyncAgentClient
    from dxflow.client.aio.director import AsyncDirectorClient
    from dxflow.client.aio.engine import AsyncEngineClient
    from dxflow.client.aio.terminal import AttachedShell, attach_shell, open_attach

_LAZY = {
    "AgentEndpoint": "dxflow.client.aio.agent",
    "AsyncAgentClient": "dxflow.client.aio.agent",
    "AsyncDirectorClient": "dxflow.client.aio.director",
    "AsyncEngineClient": "dxflow.client.aio.engine",
    "AttachedShell": "dxflow.client.aio.terminal",
    "attach_shell": "dxflow.client.aio.terminal",
    "open_attach": "dxflow.client.aio.terminal",
}

__all__ = [
    "AgentEndpoint",
    "AsyncAgentClient",
    "AsyncDirectorClient",
    "AsyncEngineClient",
    "AttachedShell",
    "attach_shell",
    "open_attach",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dxflow.client.aio' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
