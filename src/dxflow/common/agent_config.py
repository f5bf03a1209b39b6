"""Agent configuration (DESIGN §7): one frozen dataclass built from YAML + ``DXFLOW_AGENT_*``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dxflow.protocol.errors import ConfigError
from dxflow.server.config import load_config

__all__ = ["AgentConfig", "load_agent_config"]

DEFAULT_DATA_DIR = Path("~/.dxflow/agent").expanduser()
SESSION_BACKENDS = ("engine", "dcv")


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """Everything the agent needs; the registration token is hidden from ``repr``."""

    director_address: str
    data_dir: Path = DEFAULT_DATA_DIR
    tags: tuple[str, ...] = ()
    update_interval: float = 30.0
    agent_host: str = "0.0.0.0"
    agent_port: int = 8446
    engine_address: str = "127.0.0.1"
    engine_port: int = 8080
    engine_cert: Path | None = None
    engine_key: Path | None = None
    engine_advertise_address: str | None = None
    registration_token: str | None = field(default=None, repr=False)
    session_backend: str = "engine"
    director_ca: Path | None = None
    hostname: str | None = None
    retry_max_interval: float = 60.0
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not self.director_address.startswith("https://"):
            raise ConfigError("config key 'director_address' must be an https:// URL")
        if self.session_backend not in SESSION_BACKENDS:
            raise ConfigError(
                f"config key 'session_backend' must be one of {', '.join(SESSION_BACKENDS)}, "
                f"not {self.session_backend!r}"
            )
        if self.update_interval <= 0:
            raise ConfigError("config key 'update_interval' must be positive")
        if not 0 <= self.agent_port <= 65535:
            raise ConfigError("config key 'agent_port' must be a TCP port (0-65535)")

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "agent.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "agent.log"


def load_agent_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read the agent config from ``path`` (optional) and the environment."""
    try:
        return load_config(AgentConfig, "agent", path, env)
    except ConfigError as exc:
        if "director_address" in str(exc) and "missing" in str(exc):
            raise ConfigError("config key 'director_address' is required") from None
        raise
