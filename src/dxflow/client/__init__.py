"""The dxflow SDK: profiles, settings resolution, authenticated sessions and API clients."""

from dxflow.client.engine import EngineClient
from dxflow.client.profiles import ProfileStore
from dxflow.client.session import Session, open_session
from dxflow.client.settings import ConnectionSettings, resolve_settings
from dxflow.client.shell import ExecResult, ShellClient
from dxflow.client.workflow import LogLine, WorkflowClient
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

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ConfigError",
    "ConnectionSettings",
    "DxflowError",
    "EngineClient",
    "ExecResult",
    "LogLine",
    "NotFound",
    "PermissionDenied",
    "ProfileNotFound",
    "ProfileStore",
    "Session",
    "ShellClient",
    "TLSVerifyError",
    "TransportError",
    "WorkflowClient",
    "open_session",
    "resolve_settings",
]
