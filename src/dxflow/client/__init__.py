"""The dxflow SDK: profiles, settings resolution, authenticated sessions and API clients.

Names are imported on first use, so ``dxflow.client.aio`` (the async twin, on aiohttp) loads without requests and
the sync SDK without aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dxflow.protocol.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    DxflowError,
    NotFound,
    PermissionDenied,
    ProfileNotFound,
    TLSVerifyError,
    TransportError,
)

if TYPE_CHECKING:
    from dxflow.client.engine import EngineClient
    from dxflow.client.profiles import ProfileStore
    from dxflow.client.session import Session, open_session
    from dxflow.client.settings import ConnectionSettings, resolve_settings
    from dxflow.client.shell import ExecResult, ShellClient
    from dxflow.client.transport import MockTransport, Reply
    from dxflow.client.workflow import LogLine, WorkflowClient

_LAZY = {
    "ConnectionSettings": "dxflow.client.settings",
    "EngineClient": "dxflow.client.engine",
    "ExecResult": "dxflow.client.shell",
    "LogLine": "dxflow.client.workflow",
    "MockTransport": "dxflow.client.transport",
    "ProfileStore": "dxflow.client.profiles",
    "Reply": "dxflow.client.transport",
    "Session": "dxflow.client.session",
    "ShellClient": "dxflow.client.shell",
    "WorkflowClient": "dxflow.client.workflow",
    "open_session": "dxflow.client.session",
    "resolve_settings": "dxflow.client.settings",
}

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ConfigError",
    "ConnectionSettings",
    "DxflowError",
    "EngineClient",
    "ExecResult",
    "LogLine",
    "MockTransport",
    "NotFound",
    "PermissionDenied",
    "ProfileNotFound",
    "ProfileStore",
    "Reply",
    "Session",
    "ShellClient",
    "TLSVerifyError",
    "TransportError",
    "WorkflowClient",
    "open_session",
    "resolve_settings",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dxflow.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
