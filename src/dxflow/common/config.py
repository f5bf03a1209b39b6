"""Engine configuration (DESIGN §7): one frozen dataclass built from YAML + ``DXFLOW_ENGINE_*`` + ``boot up`` flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dxflow.protocol.errors import ConfigError
from dxflow.server.config import load_config

__all__ = ["EngineConfig", "WorkflowSources", "default_engine_data_dir", "dxflow_home", "load_engine_config"]


def dxflow_home() -> Path:
    """The client's config home: ``$DXFLOW_HOME`` or ``~/.dxflow``."""
    return Path(os.environ.get("DXFLOW_HOME") or Path.home() / ".dxflow").expanduser()


def default_engine_data_dir() -> Path:
    """The engine's data dir when none is given: ``$DXFLOW_ENGINE_DATA_DIR`` or ``<home>/engine``."""
    env = os.environ.get("DXFLOW_ENGINE_DATA_DIR")
    return Path(env).expanduser() if env else dxflow_home() / "engine"


@dataclass(frozen=True, kw_only=True)
class WorkflowSources:
    """``POST /api/workflow/?source=URL`` (``engine/workflows/sources.py``): off unless enabled with an allow-list."""

    enabled: bool = False
    allow: tuple[str, ...] = ()
    """Host names (``*.domain`` for subdomains), IP addresses and CIDRs a source URL may name or resolve to."""
    schemes: tuple[str, ...] = ("https",)
    max_bytes: int = 1024 * 1024
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.enabled and not self.allow:
            raise ConfigError("config key 'workflow_sources.enabled' needs 'workflow_sources.allow' (hosts, CIDRs)")
        if not set(self.schemes) <= {"http", "https"} or self.max_bytes < 1 or self.timeout <= 0:
            raise ConfigError("config key 'workflow_sources': schemes http/https, max_bytes >= 1, timeout > 0")


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """Settings of one engine process."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=lambda: dxflow_home() / "engine")
    volume: Path | None = None
    """Where artifacts and workflow directories live (``/api/engine/parameter/``); default ``<data_dir>/volume``."""
    log_level: str = "INFO"
    plaintext: bool = False
    edge_jwks: str | None = None
    """JWKS of the edge proxy (a file path or an https:// URL); when set, every request needs a valid edge JWT."""
    edge_audience: str | None = None
    edge_issuer: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ui_dir: Path | None = None
    token_lifetime: float = 3600.0
    """Default token lifetime in seconds (clients may ask for 1 min to 24 h)."""
    challenge_lifetime: float = 60.0
    challenge_rate: float = 50.0
    """Challenges per second per client address (token bucket refill)."""
    challenge_burst: int = 100
    max_pending_challenges: int = 10_000
    max_body: int = 1024 * 1024
    """Largest JSON request body in bytes (413 past it)."""
    exec_max_body: int = 16 * 1024 * 1024
    """Largest ``/api/shell/exec/`` body in bytes (it carries the command's stdin)."""
    exec_max_output: int = 64 * 1024 * 1024
    """Most bytes kept per output stream of a non-streamed exec (``truncated: true`` past it)."""
    files_root: Path | None = None
    """When set, upload/download paths must resolve (symlinks included) inside this directory."""
    max_shells: int = 64
    """Most interactive shells (pty sessions) kept at once."""
    max_connections: int = 4096
    """Most client connections held at once; past it a new connection is closed at once (idle-socket floods)."""
    header_timeout: float = 30.0
    """Seconds a new connection has to finish the TLS handshake and send a request's headers (slowloris)."""
    handshake_timeout: float = 10.0
    """Seconds a new connection has to finish the TLS handshake."""
    keepalive_timeout: float = 75.0
    """Seconds an idle keep-alive connection stays open."""
    workflow_sources: WorkflowSources = field(default_factory=WorkflowSources)
    """Whether and from where ``POST /api/workflow/?source=URL`` may fetch a workflow (off by default)."""

    def __post_init__(self) -> None:
        if self.volume is None:
            object.__setattr__(self, "volume", self.data_dir / "volume")
        # absolute: detaching changes to /; files_root is compared resolved
        for name in ("data_dir", "volume", "files_root"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, getattr(self, name).expanduser().resolve())
        if not 0 <= self.port <= 65535:
            raise ConfigError("config key 'port' must be a TCP port (0-65535)")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("config keys 'tls_cert' and 'tls_key' (--tls-cert, --tls-key) go together")
        if self.edge_jwks and not self.edge_audience:
            raise ConfigError("config key 'edge_jwks' (--edge-jwks) needs 'edge_audience' (--edge-audience)")
        if self.challenge_rate < 0.1 or self.challenge_burst < 1 or not 1 <= self.challenge_lifetime <= 600:
            raise ConfigError(
                "config keys 'challenge_rate' (>= 0.1), 'challenge_burst' (>= 1), 'challenge_lifetime' (1-600 s)"
                " are out of range"
            )
        for name in ("header_timeout", "handshake_timeout", "keepalive_timeout", "token_lifetime"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"config key {name!r} must be positive")

    @property
    def key_path(self) -> Path:
        return self.data_dir / "engine.key"

    @property
    def pub_path(self) -> Path:
        return self.data_dir / "engine.pub"

    @property
    def cert_path(self) -> Path:
        return self.tls_cert or self.data_dir / "tls.crt"

    @property
    def cert_key_path(self) -> Path:
        return self.tls_key or self.data_dir / "tls.key"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "engine.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "engine.log"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def state_path(self) -> Path:
        """Where the running engine records its bound address, port and TLS fingerprint."""
        return self.data_dir / "engine.json"


def load_engine_config(path: Path | None = None, env: Mapping[str, str] | None = None, **override: Any) -> EngineConfig:
    """The engine config: YAML at ``path`` (optional), then ``DXFLOW_ENGINE_<KEY>``, then ``override`` (flags)."""
    return load_config(EngineConfig, "engine", path, env, **override)
